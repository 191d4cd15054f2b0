"""Batched EEG simulation in torch: thousands of windows per second, CPU or CUDA.

One call of :meth:`BatchedEEGGenerator.draw` simulates a whole batch with a
few tensor operations and no per-window Python loop:

1. **Sources** (0 to ``max_sources`` per window, on any vertex, independent of
   any parcellation): single dipoles, geodesic discs and elongated
   (geodesic-elliptic) patches with a flat or Gaussian profile, read from a
   bank of geodesic neighbourhoods of every vertex
   (:func:`~mne_brainforge.head.geodesic_neighbourhoods`). Each source has a
   waveform of the :class:`~mne_brainforge.simulation.waveforms.WaveformBank`
   at a random latency, a log-uniform amplitude and a random sign.
2. **Head model**: one of the family's head models per window; the sensor
   pattern of each source is a weighted sum of the gain columns of its
   vertices (``embedding_bag`` over the active vertices only: the source
   array ``J`` of 20484 x T is never formed).
3. **Channels**: a cap of the channel sets, random dropouts, electrode
   jitter and a per-channel gain error, all folded into one channel matrix
   (channels x superset electrodes, see
   :class:`~mne_brainforge.head.HeadModelFamily` for the interpolation).
4. **Noise** of one kind per window (white, pink, spatially coloured through
   the gain, line), scaled to the drawn SNR (definition in
   :mod:`mne_brainforge.simulation.synthesis`: average-referenced powers over
   the channels in use), then a random **reference** (average, one channel,
   or the mean of the two channels nearest the mastoids) applied as the
   matrix ``R = diag(mask) (I - 1 r^T)``. The SNR does not depend on the
   reference: the average-reference projector ``P`` satisfies ``P R = P``.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from mne.utils import logger

from ..head.family import HeadModelFamily, geodesic_neighbourhoods
from ..utils import check_int, check_number
from .dataset import SOURCE_MOMENT
from .synthesis import NOISE_KINDS, check_snr_range
from .waveforms import WaveformBank

#: Kinds of sources drawn (``source_kind`` indexes this tuple; -1: no source).
SOURCE_KINDS = ("dipole", "disc", "elongated")
#: Profiles of extended sources (``profile`` indexes this tuple).
PROFILES = ("flat", "gaussian")
#: References drawn (``reference_kind`` indexes this tuple).
REFERENCES = ("average", "channel", "linked")
# Cortical sources mixed into spatially coloured noise
_N_NOISE_SOURCES = 64
# Superset electrodes standing for the mastoids of linked references
_MASTOIDS = ("TP9", "TP10")


def _probabilities(value, names, what):
    """Normalised probabilities (tensor) over ``names`` from a dict or sequence."""
    if isinstance(value, dict):
        bad = sorted(set(value) - set(names))
        if bad:
            raise ValueError(f"Unknown {what} {bad}; use some of {names}.")
        value = [value.get(n, 0.0) for n in names]
    p = np.asarray(value, float)
    if p.shape != (len(names),) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(
            f"{what} probabilities must be {len(names)} non-negative numbers (for "
            f"{names}) with a positive sum, got {value!r}."
        )
    return torch.as_tensor(p / p.sum(), dtype=torch.float64)


def seed_for(base_seed, rank=0, worker=0, step=0):
    """A 63-bit seed of its own for each (base seed, rank, worker, step).

    The four numbers are hashed together (:class:`numpy.random.SeedSequence`),
    so two ranks or workers never share a stream, and a stream is
    reproducible from its coordinates.

    Parameters
    ----------
    base_seed, rank, worker, step : int
        Seed of the run, DDP rank, DataLoader worker and batch number.

    Returns
    -------
    seed : int
        The seed for :meth:`BatchedEEGGenerator.draw`.

    Examples
    --------
    >>> from mne_brainforge.simulation.engine import seed_for
    >>> seed_for(0, rank=1, worker=0, step=5) != seed_for(0, rank=0, worker=1, step=5)
    True
    """
    entropy = [
        check_int(v, n, minimum=0)
        for v, n in (
            (base_seed, "base_seed"),
            (rank, "rank"),
            (worker, "worker"),
            (step, "step"),
        )
    ]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class BatchedEEGGenerator:
    """Draw batches of simulated EEG windows with known sources, in torch.

    Parameters
    ----------
    family : HeadModelFamily
        The head models and the superset montage.
    waveforms : WaveformBank
        Source waveforms; its ``sfreq`` and ``n_times`` set the windows'.
    channel_sets : list of ChannelSet | None
        Caps drawn from; None for ``family.default_channel_sets()``.
    channel_set_weights : sequence of float | None
        Probability of each set; None for uniform.
    max_sources : int
        Largest number of sources of a window.
    n_sources_weights : sequence of float | None
        Probability of 0, 1, ..., ``max_sources`` sources; None for 5% of
        windows without sources and the rest uniform.
    source_kinds : dict | None
        Probability of each of :data:`SOURCE_KINDS`; None for
        ``{'dipole': 0.2, 'disc': 0.5, 'elongated': 0.3}``.
    extent_range : tuple of float
        Range (m) of the geodesic radius of discs and of the long semi-axis
        of elongated patches, drawn uniformly; at most the radius of the
        neighbourhood bank.
    elongation_range : tuple of float
        Range of the ratio long / short axis of elongated patches (uniform).
    gaussian_probability : float
        Probability that an extended source has a Gaussian profile (SD a half
        of its radius, truncated at the radius) instead of a flat one.
    amplitude_range : tuple of float
        Range of the peak moment of a source vertex, in units of
        ``SOURCE_MOMENT`` (10 nA·m), drawn log-uniformly.
    waveform_weights : dict | None
        Probability of each family of ``waveforms``; None for uniform.
    snr_range : tuple of float
        SNR range in dB, drawn uniformly.
    noise_kinds : dict | sequence of str
        Noise models (:data:`~mne_brainforge.simulation.NOISE_KINDS`),
        uniformly, or a dict of probabilities. ``'line'`` is dropped when the
        line frequency is not below Nyquist.
    line_freq : float
        Power-line frequency (Hz).
    dropout_range : tuple of float
        Range of the fraction of a cap's channels dropped (uniform per window).
    min_channels : int
        Dropouts keep at least this many channels (or the whole cap if smaller).
    jitter_sd : float
        SD (m) of the electrode displacement along each tangent axis.
    gain_sigma : float
        SD of the multiplicative per-channel gain error.
    reference_weights : dict | None
        Probability of each of :data:`REFERENCES`; None for
        ``{'average': 0.5, 'channel': 0.25, 'linked': 0.25}``.
    device : str | torch.device
        Where the batches are computed and returned.

    Notes
    -----
    Shapes of what :meth:`draw` returns (``B`` windows, ``C`` the largest cap,
    ``S = max_sources``, ``K`` the largest patch of the batch, ``T`` samples):

    - ``eeg`` (B, C, T) float32, V: referenced, zero outside ``mask``;
      ``mask`` (B, C) bool; ``channels`` (B, C) superset index of each
      channel's nearest electrode (-1: padding); ``ch_pos`` (B, C, 3) the
      nominal positions (m) a user would know; ``channel_set`` (B,);
      ``reference`` (B, C) the weights ``r`` of the reference signal;
      ``reference_kind`` (B,).
    - ``head_model`` (B,); ``noise_kind`` (B,) index into ``noise_kinds``;
      ``snr_db`` (B,) (NaN without sources or noise).
    - ``n_sources`` (B,); per source slot: ``source_kind`` (B, S) (-1 for an
      empty slot), ``centre`` (B, S) vertex, ``extent`` (B, S) radius (m; 0
      for dipoles, NaN for empty slots), ``elongation`` (B, S), ``profile``
      (B, S), ``amplitude`` (B, S) signed peak moment (A·m),
      ``waveform_family`` (B, S), ``waveform`` (B, S, T) unit-peak;
      ``source_index`` (B, S, K) vertices and ``source_weight`` (B, S, K)
      their profile weights (0 for padding). The moments are
      ``J[b] = sum_s amplitude[b, s] * w[b, s] (x) waveform[b, s]`` with
      ``w[b, s]`` the weights scattered on ``source_index[b, s]``
      (:meth:`source_map`, :meth:`source_activity`).
    - ``signal`` (B, C, T), the noise-free EEG in the same reference, if
      asked for.

    Electrode jitter and caps off the superset are first-order interpolations
    of the superset gain (:class:`~mne_brainforge.head.HeadModelFamily`). On
    CUDA, ``scatter_add`` may sum in another order from run to run, so batches
    agree only to float32 rounding there; on the CPU they are identical.

    Examples
    --------
    >>> from mne_brainforge.head import make_head_model_family
    >>> from mne_brainforge.simulation.engine import BatchedEEGGenerator, seed_for
    >>> from mne_brainforge.simulation.waveforms import fetch_waveform_bank
    >>> generator = BatchedEEGGenerator(make_head_model_family(), fetch_waveform_bank())
    >>> batch = generator.draw(256, seed_for(0, rank=0, worker=0, step=0))
    >>> batch["eeg"].shape[0], batch["eeg"].shape[2]
    (256, 100)
    """

    def __init__(
        self,
        family,
        waveforms,
        *,
        channel_sets=None,
        channel_set_weights=None,
        max_sources=5,
        n_sources_weights=None,
        source_kinds=None,
        extent_range=(0.005, 0.03),
        elongation_range=(1.5, 4.0),
        gaussian_probability=0.5,
        amplitude_range=(0.5, 2.0),
        waveform_weights=None,
        snr_range=(0.0, 30.0),
        noise_kinds=NOISE_KINDS,
        line_freq=50.0,
        dropout_range=(0.0, 0.2),
        min_channels=8,
        jitter_sd=0.003,
        gain_sigma=0.05,
        reference_weights=None,
        device="cpu",
    ):
        if not isinstance(family, HeadModelFamily):
            raise TypeError(
                f"family must be a HeadModelFamily, got {type(family).__name__}."
            )
        if not isinstance(waveforms, WaveformBank):
            raise TypeError(
                f"waveforms must be a WaveformBank, got {type(waveforms).__name__}."
            )
        dev = self.device = torch.device(device)
        self.family, self.sfreq, self.n_times = (
            family,
            waveforms.sfreq,
            waveforms.n_times,
        )
        self.bank = waveforms.to(dev)
        self.max_sources = check_int(max_sources, "max_sources", minimum=1)
        if n_sources_weights is None:
            n_sources_weights = [0.05] + [0.95 / max_sources] * max_sources
        self.p_n_sources = _probabilities(
            n_sources_weights, tuple(range(max_sources + 1)), "n_sources"
        )
        self.p_kind = _probabilities(
            source_kinds or dict(dipole=0.2, disc=0.5, elongated=0.3),
            SOURCE_KINDS,
            "source kind",
        )
        self.p_family = _probabilities(
            waveform_weights or [1.0] * len(waveforms.families),
            waveforms.families,
            "waveform family",
        )
        self.p_reference = _probabilities(
            reference_weights or dict(average=0.5, channel=0.25, linked=0.25),
            REFERENCES,
            "reference",
        )
        self.extent_range = tuple(
            check_number(v, "extent_range", minimum=0) for v in extent_range
        )
        self.elongation_range = tuple(
            check_number(v, "elongation_range", minimum=1) for v in elongation_range
        )
        self.gaussian_probability = check_number(
            gaussian_probability, "gaussian_probability", minimum=0
        )
        self.amplitude_range = tuple(
            check_number(v, "amplitude_range", minimum=0, strict=True)
            for v in amplitude_range
        )
        self.snr_range = check_snr_range(snr_range)
        names = tuple(noise_kinds)
        self.line_freq = check_number(line_freq, "line_freq", minimum=0, strict=True)
        if "line" in names and self.line_freq >= self.sfreq / 2:
            logger.info(
                f"No line noise: {self.line_freq:g} Hz is not below Nyquist at {self.sfreq:g} Hz"
            )
            if isinstance(noise_kinds, dict):
                noise_kinds = {k: v for k, v in noise_kinds.items() if k != "line"}
            names = tuple(n for n in names if n != "line")
        if not names or set(names) - set(NOISE_KINDS):
            raise ValueError(
                f"noise_kinds must be among {NOISE_KINDS}, got {noise_kinds!r}."
            )
        self.noise_kinds = names
        self.p_noise = _probabilities(
            noise_kinds if isinstance(noise_kinds, dict) else [1.0] * len(names),
            names,
            "noise kind",
        )
        self.dropout_range = tuple(
            check_number(v, "dropout_range", minimum=0) for v in dropout_range
        )
        if not 0 <= self.dropout_range[0] <= self.dropout_range[1] < 1:
            raise ValueError(
                f"dropout_range must be 0 <= low <= high < 1, got {dropout_range}."
            )
        self.min_channels = check_int(min_channels, "min_channels", minimum=1)
        self.jitter_sd = check_number(jitter_sd, "jitter_sd", minimum=0)
        self.gain_sigma = check_number(gain_sigma, "gain_sigma", minimum=0)

        # channel sets, padded to the largest
        self.channel_sets = list(
            family.default_channel_sets() if channel_sets is None else channel_sets
        )
        if not self.channel_sets:
            raise ValueError("channel_sets is empty: give at least one ChannelSet.")
        self.p_set = _probabilities(
            channel_set_weights or [1.0] * len(self.channel_sets),
            tuple(s.name for s in self.channel_sets),
            "channel set",
        )
        n_max = max(s.n_channels for s in self.channel_sets)
        n_sets = len(self.channel_sets)
        base = torch.full((n_sets, n_max), -1, dtype=torch.long)
        offset, pos = torch.zeros(n_sets, n_max, 2), torch.zeros(n_sets, n_max, 3)
        for i, s in enumerate(self.channel_sets):
            if s.base.max() >= family.n_channels:
                raise ValueError(
                    f"Channel set {s.name!r} is not a set of this family's montage."
                )
            base[i, : s.n_channels] = torch.as_tensor(s.base)
            offset[i, : s.n_channels] = torch.as_tensor(s.offset)
            pos[i, : s.n_channels] = torch.as_tensor(s.pos)
        self.set_base, self.set_offset, self.set_pos = (
            base.to(dev),
            offset.to(dev),
            pos.to(dev),
        )
        self.set_size = torch.as_tensor(
            [s.n_channels for s in self.channel_sets], device=dev
        )
        # only the superset electrodes some cap's stencil uses enter the gain table
        bases = np.concatenate([cs.base for cs in self.channel_sets])
        used = np.unique(family.stencil[bases])
        position = np.full(family.n_channels, -1)
        position[used] = np.arange(len(used))
        self.n_used = len(used)
        self.stencil = torch.as_tensor(position[family.stencil], device=dev)
        self.stencil_pinv = torch.as_tensor(
            family.stencil_pinv, dtype=torch.float32, device=dev
        )
        mastoids = [
            family.ch_names.index(m) if m in family.ch_names else None
            for m in _MASTOIDS
        ]
        if None in mastoids:  # the lowest superset electrode on each side
            x, z = family.ch_pos[:, 0], family.ch_pos[:, 2]
            mastoids = [
                int(np.argmin(np.where(sign * x > 0, z, np.inf))) for sign in (-1, 1)
            ]
        self.mastoid_pos = torch.as_tensor(
            family.ch_pos[mastoids], dtype=torch.float32, device=dev
        )

        # head models: gain rows of (model, vertex), for embedding_bag gathers
        n_models, _, n_src = family.gains.shape
        self.gain_rows = (
            torch.as_tensor(family.gains[:, used], device=dev)
            .transpose(1, 2)
            .reshape(n_models * n_src, self.n_used)
            .contiguous()
        )
        radius = max(self.extent_range[1], 1e-3)
        index, distance = geodesic_neighbourhoods(family.src, radius, verbose=False)
        self.nb_index = torch.as_tensor(index, device=dev)
        self.nb_distance = torch.as_tensor(distance, device=dev)
        rr = np.concatenate([s["rr"][s["vertno"]] for s in family.src])
        nn = np.concatenate([s["nn"][s["vertno"]] for s in family.src])
        self.src_rr = torch.as_tensor(rr, dtype=torch.float32, device=dev)
        self.src_nn = torch.as_tensor(nn, dtype=torch.float32, device=dev)
        # noise level of windows without sources: the average-referenced rms of
        # a flat 1 cm-radius patch (about 30 vertices) of unit moment
        g = family.gains[0] - family.gains[0].mean(0)
        freqs = torch.fft.rfftfreq(self.n_times, device=dev)
        freqs[0] = freqs[1]  # no infinite DC
        # 1/f power, scaled for unit variance after the inverse FFT
        amp = freqs.rsqrt()
        weight = torch.full_like(amp, 2.0)
        # irfft keeps only the real part of the DC and Nyquist bins
        weight[0] = 0.5
        if self.n_times % 2 == 0:
            weight[-1] = 0.5
        # E|X_k|^2 = 1 for unit complex normals: variance = sum w a^2 / T^2
        self.pink_filter = amp * self.n_times / torch.sqrt((weight * amp**2).sum())
        self.empty_rms = float(30 * SOURCE_MOMENT * np.median(np.sqrt((g**2).mean(0))))
        logger.info(
            f"Batched EEG generator: {n_models} head models, {n_sets} channel sets "
            f"(up to {n_max} channels), {len(self.bank.family)} waveforms, "
            f"{self.n_times} samples at {self.sfreq:g} Hz, on {dev}"
        )

    # -- random helpers (all randomness comes from one generator) ----------
    def _rand(self, g, *shape):
        return torch.rand(shape, generator=g, device=self.device)

    def _randn(self, g, *shape):
        return torch.randn(shape, generator=g, device=self.device)

    def _choice(self, g, p, *shape):
        cdf = torch.cumsum(p, 0).to(self.device, torch.float32)
        return torch.searchsorted(
            cdf[:-1].contiguous(), self._rand(g, *shape).contiguous(), right=True
        )

    def _uniform(self, g, bounds, *shape):
        return bounds[0] + (bounds[1] - bounds[0]) * self._rand(g, *shape)

    # -- sources ------------------------------------------------------------
    def _sources(self, g, B):
        S = self.max_sources
        n_sources = self._choice(g, self.p_n_sources, B)
        active = torch.arange(S, device=self.device) < n_sources[:, None]
        kind = torch.where(active, self._choice(g, self.p_kind, B, S), -1)
        centre = torch.randint(
            0, len(self.nb_index), (B, S), generator=g, device=self.device
        )
        extent = self._uniform(g, self.extent_range, B, S)
        extent = torch.where(kind == 0, 0.0, extent).masked_fill(~active, math.nan)
        elong = torch.where(
            kind == 2, self._uniform(g, self.elongation_range, B, S), 1.0
        )
        profile = (self._rand(g, B, S) < self.gaussian_probability).long()
        profile = torch.where(kind > 0, profile, 0)
        lo, hi = (math.log(a * SOURCE_MOMENT) for a in self.amplitude_range)
        sign = torch.where(self._rand(g, B, S) < 0.5, -1.0, 1.0)
        amplitude = sign * torch.exp(self._uniform(g, (lo, hi), B, S)) * active
        fam = self._choice(g, self.p_family, B, S)
        wave = (
            self.bank.start[fam] + (self._rand(g, B, S) * self.bank.count[fam]).long()
        )
        offset = self.bank.random_offsets(wave, self._rand(g, B, S))
        waveform = self.bank.windows(wave, offset)
        axis_angle = self._uniform(g, (0.0, math.pi), B, S)

        # patch weights over each centre's geodesic neighbourhood, computed
        # for the active slots only
        act = active.reshape(-1).nonzero().squeeze(1)
        c_act = centre.reshape(-1)[act]
        r = extent.reshape(-1)[act][:, None]
        # row gathers with index_select: faster than [] indexing on the CPU
        dist = self.nb_distance.index_select(0, c_act)  # (A, K), sorted along K
        # rows are sorted by distance and d_eff >= dist: trim what no patch reaches
        used = int((dist <= r).sum(1).max()) if len(act) else 1
        index = self.nb_index.index_select(0, c_act)[:, :used].long()
        d_eff = dist[:, :used]
        elongated = (kind.reshape(-1)[act] == 2).nonzero().squeeze(1)
        if len(elongated):
            d_eff = d_eff.clone()
            d_eff[elongated] = self._stretched(
                index[elongated],
                d_eff[elongated],
                c_act[elongated],
                axis_angle.reshape(-1)[act][elongated],
                elong.reshape(-1)[act][elongated],
            )
        gauss = torch.exp(-0.5 * (d_eff / (0.5 * r).clamp_min(1e-6)) ** 2)
        weight_act = torch.where(profile.reshape(-1)[act][:, None] == 1, gauss, 1.0)
        weight_act = weight_act * (d_eff <= r)
        index_all = centre.reshape(-1, 1).repeat(1, used)
        index_all[act] = index
        weight = torch.zeros(B * S, used, device=self.device)
        weight[act] = weight_act
        index, weight = index_all.reshape(B, S, used), weight.reshape(B, S, used)
        return dict(
            n_sources=n_sources,
            source_kind=kind,
            centre=centre,
            extent=extent,
            elongation=torch.where(active, elong, math.nan),
            profile=torch.where(active, profile, -1),
            amplitude=amplitude,
            waveform_family=torch.where(active, fam, -1),
            waveform=waveform * active[..., None],
            source_index=index[..., :used],
            source_weight=weight[..., :used],
        )

    def _stretched(self, index, dist, centre, angle, elongation):
        """Geodesic distances stretched across a random axis: elliptic patches.

        The direction of each vertex from the centre is its offset projected on
        the centre's tangent plane; across the long axis, distances count
        ``elongation`` times more.
        """
        rel = self.src_rr.index_select(0, index.reshape(-1)).reshape(*index.shape, 3)
        rel = rel - self.src_rr.index_select(0, centre)[:, None]
        normal = self.src_nn.index_select(0, centre)
        ref = torch.zeros_like(normal)
        ref[:, 2] = normal[:, 2].abs() < 0.9
        ref[:, 0] = normal[:, 2].abs() >= 0.9
        u = F.normalize(torch.linalg.cross(ref, normal), dim=-1)
        v = torch.linalg.cross(normal, u)
        c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
        u, v = c * u + s * v, c * v - s * u
        along = torch.einsum("akx,ax->ak", rel, u)
        across = torch.einsum("akx,ax->ak", rel, v)
        cos2 = along**2 / (along**2 + across**2).clamp_min(1e-20)
        return dist * torch.sqrt(cos2 + elongation[:, None] ** 2 * (1 - cos2))

    def _patterns(self, src, head_model):
        """Sensor pattern of each source slot (B, S, n_used), with amplitude.

        On the superset electrodes the channel sets use (``n_used``).
        """
        B, S, _ = src["source_weight"].shape
        w = src["source_weight"] * src["amplitude"][..., None]
        nz = w != 0
        flat = nz.reshape(-1).nonzero().squeeze(1)  # once for rows and weights
        rows = head_model[:, None, None] * self.family.n_sources + src["source_index"]
        counts = nz.sum(-1).reshape(-1)
        offsets = torch.cumsum(counts, 0) - counts
        out = F.embedding_bag(
            rows.reshape(-1).index_select(0, flat),
            self.gain_rows,
            offsets,
            mode="sum",
            per_sample_weights=w.reshape(-1).index_select(0, flat),
        )
        return out.reshape(B, S, -1)

    # -- channels -----------------------------------------------------------
    def _channels(self, g, B):
        set_id = self._choice(g, self.p_set, B)
        base = self.set_base[set_id]  # (B, C)
        valid = base >= 0
        n_valid = self.set_size[set_id]
        drop = self._uniform(g, self.dropout_range, B)[:, None]
        u = self._rand(g, *base.shape).masked_fill(~valid, -1.0)
        rank = torch.argsort(torch.argsort(u, dim=1, descending=True), dim=1)
        min_keep = torch.clamp(n_valid, max=self.min_channels)[:, None]
        mask = valid & ((u >= drop) | (rank < min_keep))
        offset = self.set_offset[set_id] + self.jitter_sd * self._randn(
            g, *base.shape, 2
        )
        b = base.clamp_min(0)
        coef = torch.einsum("bcd,bcdk->bck", offset, self.stencil_pinv[b])
        weight = torch.cat([1 - coef.sum(-1, keepdim=True), coef], -1)
        gain_error = 1 + self.gain_sigma * self._randn(g, *base.shape)
        weight = weight * (gain_error * mask)[..., None]
        chans = dict(
            channel_set=set_id, channels=base, mask=mask, ch_pos=self.set_pos[set_id]
        )
        return chans, (self.stencil[b], weight)

    @staticmethod
    def _project(stencil, x):
        """Patterns (B, M, n_used) -> channels (B, C, M) of the caps drawn.

        Each channel is a weighted sum of a few superset electrodes (its
        interpolation stencil, with gain error and dropout folded in).
        """
        index, weight = stencil
        B, C, n = index.shape
        picked = x[torch.arange(B, device=x.device)[:, None, None], :, index]
        return (picked * weight[..., None]).sum(2)  # (B, C, n, M) -> (B, C, M)

    def _reference(self, g, mask, pos):
        B, C = mask.shape
        kind = self._choice(g, self.p_reference, B)
        m = mask.float()
        average = m / m.sum(1, keepdim=True)
        pick = torch.argmax(self._rand(g, B, C) * m, dim=1)
        single = F.one_hot(pick, C).float()
        dist = torch.cdist(pos, self.mastoid_pos[None].expand(B, -1, -1))  # (B, C, 2)
        nearest = torch.argmin(dist.masked_fill(~mask[..., None], math.inf), dim=1)
        linked = 0.5 * F.one_hot(nearest, C).float().sum(1)
        ref = torch.stack([average, single, linked], 1)[
            torch.arange(B, device=self.device), kind
        ]
        return kind, ref

    # -- noise --------------------------------------------------------------
    def _pink(self, g, *shape):
        """1/f Gaussian noise along time, unit variance in expectation."""
        n_freq = self.n_times // 2 + 1
        spec = torch.randn(
            (*shape, n_freq), generator=g, device=self.device, dtype=torch.complex64
        )
        return torch.fft.irfft(spec * self.pink_filter, n=self.n_times)

    def _noise(self, g, kind, stencil, head_model):
        B, C, _ = stencil[0].shape
        # every window gets one kind, so every row is written below
        noise = torch.empty(B, C, self.n_times, device=self.device)
        for k, name in enumerate(self.noise_kinds):
            sel = (kind == k).nonzero().squeeze(1)
            n = len(sel)
            if n == 0:  # MKL's FFT fails on empty batches
                continue
            if name == "white":
                part = self._randn(g, n, C, self.n_times)
            elif name == "pink":
                part = self._pink(g, n, C)
            elif name == "line":
                t = torch.arange(self.n_times, device=self.device) / self.sfreq
                part = torch.zeros(n, C, self.n_times, device=self.device)
                for harmonic, scale in ((1, 1.0), (2, 0.3)):
                    if harmonic * self.line_freq < self.sfreq / 2:
                        phase = 2 * math.pi * self._rand(g, n, C, 1)
                        amp = scale * self._uniform(g, (0.2, 1.0), n, C, 1)
                        part += amp * torch.sin(
                            2 * math.pi * harmonic * self.line_freq * t + phase
                        )
            else:  # spatial: 1/f activity of random cortical sources
                vert = torch.randint(
                    0,
                    self.family.n_sources,
                    (n, _N_NOISE_SOURCES),
                    generator=g,
                    device=self.device,
                )
                rows = head_model[sel][:, None] * self.family.n_sources + vert
                channels = torch.zeros(n, C, self.n_used, device=self.device)
                channels.scatter_add_(2, stencil[0][sel], stencil[1][sel])
                patterns = self.gain_rows.index_select(0, rows.reshape(-1))
                patterns = patterns.reshape(*rows.shape, -1).transpose(1, 2)
                mixing = torch.bmm(channels, patterns)
                part = torch.bmm(mixing, self._pink(g, n, _N_NOISE_SOURCES))
            noise[sel] = part
        return noise

    # -- the batch ----------------------------------------------------------
    def draw(self, batch_size, seed=0, *, snr_db="random", signal=False):
        """Simulate a batch of windows.

        Parameters
        ----------
        batch_size : int
            Number of windows.
        seed : int | torch.Generator
            Seed (e.g. from :func:`seed_for`) or a generator on this
            generator's device; the same seed gives the same batch.
        snr_db : 'random' | float | None
            ``'random'`` draws each window's SNR from ``snr_range``; a number
            fixes it; None gives noise-free windows.
        signal : bool
            Whether to return the noise-free EEG too (``'signal'``).

        Returns
        -------
        batch : dict of str -> torch.Tensor
            See the Notes of :class:`BatchedEEGGenerator`.

        Examples
        --------
        >>> batch = generator.draw(128, seed=3)
        >>> batch["eeg"].shape[:1], batch["n_sources"].max() <= 5
        (torch.Size([128]), tensor(True))
        """
        B = check_int(batch_size, "batch_size", minimum=1)
        if isinstance(seed, torch.Generator):
            g = seed
        else:
            g = torch.Generator(device=self.device).manual_seed(
                check_int(seed, "seed", minimum=0)
            )
        head_model = torch.randint(
            0, self.family.n_models, (B,), generator=g, device=self.device
        )
        src = self._sources(g, B)
        chans, stencil = self._channels(g, B)
        patterns = self._patterns(src, head_model)  # (B, S, n_used)
        sensor = self._project(stencil, patterns)  # (B, C, S)
        clean = torch.bmm(sensor, src["waveform"])  # (B, C, T)
        mask = chans["mask"]
        ref_kind, ref = self._reference(g, mask, chans["ch_pos"])
        noise_kind = self._choice(g, self.p_noise, B)
        if snr_db == "random":
            snr = self._uniform(g, self.snr_range, B)
        elif snr_db is not None:
            snr = torch.full((B,), check_number(snr_db, "snr_db"), device=self.device)
        data = clean
        if snr_db is not None:
            m = mask[..., None]
            noise = self._noise(g, noise_kind, stencil, head_model).mul_(m)
            n_kept = m.sum(1)[:, 0]

            # (B, C, T) passes dominate a draw: products without temporaries
            def power(x):  # after average reference over the channels in use
                total = x.sum(1)
                squares = torch.linalg.vector_norm(x, dim=(1, 2)) ** 2
                return squares - torch.linalg.vector_norm(total, dim=1) ** 2 / n_kept

            p_signal, p_noise = power(clean), power(noise)
            has_signal = p_signal > 0
            target = torch.where(
                has_signal,
                p_signal / 10 ** (snr / 10),
                self.empty_rms**2 * n_kept * self.n_times,
            )
            data = torch.addcmul(
                clean, torch.sqrt(target / p_noise)[:, None, None], noise
            )
            snr = torch.where(has_signal, snr, math.nan)
        else:
            snr = torch.full((B,), math.nan, device=self.device)
            noise_kind = torch.full((B,), -1, device=self.device)

        def reference(x):
            return (x - torch.einsum("bc,bct->bt", ref, x)[:, None]).mul_(
                mask[..., None]
            )

        out = dict(
            eeg=reference(data),
            **chans,
            reference=ref,
            reference_kind=ref_kind,
            head_model=head_model,
            noise_kind=noise_kind,
            snr_db=snr,
            **src,
        )
        if signal:
            out["signal"] = reference(clean)
        return out

    def source_map(self, batch):
        """Peak moment of every vertex (sum over the sources), (B, n_sources).

        Parameters
        ----------
        batch : dict
            A batch of :meth:`draw`.

        Returns
        -------
        moments : torch.Tensor, shape (batch_size, n_sources)
            ``sum_s |amplitude| * weight`` on each vertex (A·m): the support
            and amplitude of the sources (zero elsewhere).
        """
        index, weight = batch["source_index"], batch["source_weight"]
        B = index.shape[0]
        values = (weight * batch["amplitude"].abs()[..., None]).reshape(B, -1)
        out = torch.zeros(B, self.family.n_sources, device=index.device)
        return out.scatter_add_(1, index.reshape(B, -1), values)

    def source_activity(self, batch, item):
        """The dense source moments ``J`` (n_sources, T) of one window (A·m).

        For checks and plots: it forms the full array that :meth:`draw` never
        does.

        Parameters
        ----------
        batch : dict
            A batch of :meth:`draw`.
        item : int
            The window.

        Returns
        -------
        J : torch.Tensor, shape (n_sources, n_times)
        """
        w = batch["source_weight"][item] * batch["amplitude"][item][:, None]  # (S, K)
        J = torch.zeros(self.family.n_sources, self.n_times, device=w.device)
        moments = w[..., None] * batch["waveform"][item][:, None, :]  # (S, K, T)
        index = batch["source_index"][item].reshape(-1)
        return J.index_add_(0, index, moments.reshape(-1, self.n_times))
