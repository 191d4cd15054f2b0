"""``apply_brainforge_inverse``: a drop-in alternative to MNE's ``apply_inverse``."""

from fractions import Fraction
from pathlib import Path

import mne
import numpy as np
from mne.utils import logger, verbose

from ..nn.brainforge import BrainForgeModel
from ..simulation.synthesis import fixed_orientation_gain


def _load_model(model):
    if isinstance(model, BrainForgeModel):
        return model
    if model is None:
        raise ValueError(
            "No model given. Pass a BrainForgeModel (from train_model or "
            "BrainForgeModel.load) or the path of a model file."
        )
    if isinstance(model, (str, Path)) and Path(model).is_file():
        return BrainForgeModel.load(model)
    raise ValueError(f"model must be a BrainForgeModel or a model file path, got {model!r}.")


def _check_source_space(model, forward):
    vertices = [s["vertno"] for s in forward["src"]]
    same = len(vertices) == len(model.vertices) and all(
        np.array_equal(a, b) for a, b in zip(vertices, model.vertices)
    )
    if not same:
        raise ValueError(
            "The forward's source space is not the one the model was trained for "
            f"({sum(map(len, model.vertices))} sources of subject "
            f"{model.config.get('subject')!r}, forward: {sum(map(len, vertices))} of "
            f"{forward['src']._subject!r}). Train a model for this forward with "
            "mne_brainforge.training.train_model(forward), or use the template: "
            "mne_brainforge.make_fsaverage_forward(info)."
        )


def _resample(data, sfreq_from, sfreq_to):
    if np.isclose(sfreq_from, sfreq_to):
        return data
    ratio = Fraction(sfreq_to / sfreq_from).limit_denominator(1000)
    return mne.filter.resample(data, up=ratio.numerator, down=ratio.denominator, npad="auto",
                               verbose=False)  # fmt: skip


def _windows(n_samples, n_times):
    """Window starts with 50% overlap covering ``n_samples`` (padded at the end)."""
    if n_samples <= n_times:
        return [0]
    hop = n_times // 2
    starts = list(range(0, n_samples - n_times + 1, hop))
    if starts[-1] + n_times < n_samples:
        starts.append(n_samples - n_times)
    return starts


@verbose
def apply_brainforge_inverse(evoked, forward, model=None, noise_cov=None, *, pick_ori=None,
                             return_residual=False, verbose=None):  # fmt: skip
    """Estimate cortical sources of an Evoked with a BrainForge network.

    Parameters
    ----------
    evoked : mne.Evoked
        EEG data with an EEG montage. Bad channels and non-EEG channels are
        ignored; the data are average-referenced internally (a copy).
    forward : mne.Forward
        EEG forward model on the source space the model was trained for. Free
        orientation is converted to cortex-normal.
    model : BrainForgeModel | path-like
        The trained network.
    noise_cov : mne.Covariance | None
        Accepted for drop-in compatibility with :func:`mne.minimum_norm.apply_inverse`
        workflows; the network does not use it (it was trained across noise
        models and SNRs).
    pick_ori : None | 'normal'
        Both give the signed cortex-normal estimate (the network estimates
        fixed-orientation sources).
    return_residual : bool
        Also return the data minus what the estimate explains.
    %(verbose)s

    Returns
    -------
    stc : mne.SourceEstimate
        Dipole moments (A·m) normal to the cortex, on the forward's vertices:
        each region's estimated time course (the network's output) spread over
        its sources, scaled per analysis window by the least-squares fit of its
        forward projection to the data.
    residual : mne.Evoked
        Only with ``return_residual``.
    """
    if not isinstance(evoked, mne.Evoked):
        raise TypeError(f"evoked must be an mne.Evoked, got {type(evoked).__name__}.")
    if pick_ori not in (None, "normal"):
        raise ValueError(f"pick_ori must be None or 'normal' (fixed orientation), got {pick_ori!r}.")
    model = _load_model(model)
    _check_source_space(model, forward)
    fixed = forward
    if forward["source_ori"] != mne.io.constants.FIFF.FIFFV_MNE_FIXED_ORI:
        fixed = mne.convert_forward_solution(forward, surf_ori=True, force_fixed=True, verbose=False)
    gain, fwd_names = fixed_orientation_gain(fixed)
    usable = [n for n in fwd_names if n in evoked.ch_names and n not in evoked.info["bads"]]
    if len(usable) < 8:
        raise ValueError(
            f"Only {len(usable)} good EEG channels are both in the data and in the forward; "
            "BrainForge needs at least 8 (check channel names and bads)."
        )
    gain = gain[[fwd_names.index(n) for n in usable]]
    picks = [evoked.ch_names.index(n) for n in usable]
    data = evoked.data[picks].astype(np.float64)
    data = data - data.mean(0)
    gain = gain - gain.mean(0)
    ch_pos = np.array([evoked.info["chs"][p]["loc"][:3] for p in picks])
    logger.info(f"BrainForge inverse: {len(usable)} channels, {evoked.data.shape[1]} samples")

    sfreq = evoked.info["sfreq"]
    resampled = _resample(data, sfreq, model.sfreq)
    n_samples, n_times = resampled.shape[1], model.n_times
    region_gain = gain @ model.parcellation.region_matrix().toarray()
    regions = np.zeros((model.parcellation.n_regions, max(n_samples, n_times)))
    weight = np.zeros(regions.shape[1])
    taper = np.hanning(n_times + 2)[1:-1]
    for start in _windows(n_samples, n_times):
        window = np.zeros((len(usable), n_times))
        chunk = resampled[:, start : start + n_times]
        window[:, : chunk.shape[1]] = chunk
        pred = model.predict_regions(window[None], ch_pos)[0]
        # absolute scale: least-squares fit of the predicted pattern to the data
        projected = region_gain @ pred
        alpha = np.sum(projected * window) / max(np.sum(projected**2), 1e-300)
        regions[:, start : start + n_times] += alpha * pred * taper
        weight[start : start + n_times] += taper
    regions = regions[:, :n_samples] / np.maximum(weight[:n_samples], 1e-12)
    regions = _resample(regions, model.sfreq, sfreq)[:, : evoked.data.shape[1]]
    if regions.shape[1] < evoked.data.shape[1]:
        regions = np.pad(regions, ((0, 0), (0, evoked.data.shape[1] - regions.shape[1])))
    stc = mne.SourceEstimate(
        model.to_sources(regions), model.vertices, tmin=evoked.times[0], tstep=1 / sfreq,
        subject=forward["src"]._subject,
    )  # fmt: skip
    if not return_residual:
        return stc
    residual = evoked.copy().pick(usable)
    residual.data = data - region_gain @ regions
    return stc, residual
