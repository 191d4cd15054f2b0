"""Sparse Bayes (Champagne) vs sLORETA on dipoles simulated through another head.

Data: biosemi64, 100 samples at 250 Hz, white sensor noise at 10 dB (the
project's SNR convention, after average reference), simulated with a skull
conductivity of 0.0105 S/m (methods get 0.006) and electrodes jittered by 4 mm
(per axis). Both methods get the true (white) noise level as covariance. Reports
the mean localization error (mm, :func:`mne_brainforge.metrics.localization_error`),
the solve time, and the coverage of the 90 % posterior intervals of the sparse
Bayes estimate at the true sources.

Run: ``python benchmarks/bench_sparse_bayes.py [n_cases]`` (about 10 min on 2 cores).
"""

import sys
import time

import mne
import numpy as np
from scipy.spatial.distance import cdist

from mne_brainforge import metrics
from mne_brainforge.head import (
    cortex_normal,
    fixed_orientation_gain,
    jitter_electrodes,
    make_fsaverage_forward,
    make_montage_info,
    source_graph,
)
from mne_brainforge.inverse import MNEInverse
from mne_brainforge.inverse.sparse_bayes import SparseBayes, apply_sparse_bayes

SFREQ, N_TIMES, SNR_DB = 250.0, 100, 10.0
Z90 = 1.6449  # two-sided 90 % normal interval


def _waveform(rng):
    t = np.arange(N_TIMES) / SFREQ
    freq, phase = rng.uniform(4, 12), rng.uniform(0, 2 * np.pi)
    return np.sin(2 * np.pi * freq * t + phase) * np.hanning(N_TIMES)


def _case(rng, gain, pos, n_sources):
    first = rng.integers(gain.shape[1])
    centres = [first]
    if n_sources == 2:  # 3-6 cm away
        dist = np.linalg.norm(pos - pos[first], axis=1)
        centres.append(rng.choice(np.flatnonzero((dist > 0.03) & (dist < 0.06))))
    moments = np.zeros((gain.shape[1], N_TIMES))
    for c in centres:
        moments[c] = 10e-9 * _waveform(rng)
    signal = gain @ moments
    signal -= signal.mean(axis=0)
    noise = rng.standard_normal(signal.shape)
    noise -= noise.mean(axis=0)
    scale = np.sqrt(np.sum(signal**2) / np.sum(noise**2) / 10 ** (SNR_DB / 10))
    return np.array(centres), moments, signal + scale * noise, scale


def main(n_cases=20):
    mne.set_log_level("error")
    info = make_montage_info("biosemi64", SFREQ)
    rng = np.random.default_rng(0)
    fwd = make_fsaverage_forward(info)
    fwd_true = make_fsaverage_forward(
        jitter_electrodes(info, 0.004, rng), conductivity=(0.3, 0.0105, 0.3)
    )
    gain, _ = fixed_orientation_gain(cortex_normal(fwd_true))
    src = fwd["src"]
    graph = source_graph(src)
    pos = np.concatenate([s["rr"][s["vertno"]] for s in src])
    vertices = [s["vertno"] for s in src]
    methods = {"SparseBayes": SparseBayes(), "sLORETA": MNEInverse("sLORETA")}
    errors = {name: {1: [], 2: []} for name in methods}
    times = {name: [] for name in methods}
    covered = []
    for n_sources in (1, 2):
        for _ in range(n_cases):
            centres, moments, data, noise_sd = _case(rng, gain, pos, n_sources)
            evoked = mne.EvokedArray(data, info, tmin=0.0)
            evoked.set_eeg_reference(projection=True)
            cov = mne.Covariance(
                np.eye(len(info["ch_names"])) * noise_sd**2,
                info["ch_names"],
                [],
                [],
                1000,
            )
            truth = metrics.GroundTruth(
                mne.SourceEstimate(moments, vertices, 0.0, 1 / SFREQ),
                [[c] for c in centres],
                centres,
            )
            for name, method in methods.items():
                start = time.perf_counter()
                stc = method(evoked, fwd, cov)
                times[name].append(time.perf_counter() - start)
                errors[name][n_sources].append(
                    metrics.localization_error(stc, truth, src, graph)
                )
            stc, std = apply_sparse_bayes(evoked, fwd, cov, return_uncertainty=True)
            # the true source's nearest estimated source within 10 mm (the model
            # puts a dipole near, rarely exactly on, the true vertex)
            for c in centres:
                near = np.flatnonzero(cdist(pos[[c]], pos)[0] < 0.01)
                best = near[np.argmax(np.abs(stc.data[near]).max(axis=1))]
                inside = np.abs(stc.data[best] - moments[c]) <= Z90 * std.data[best, 0]
                covered.append(inside.mean())
    print(
        f"{n_cases} cases per source count, biosemi64, {SNR_DB:g} dB, mismatched head"
    )
    for name in methods:
        e1, e2 = np.nanmean(errors[name][1]), np.nanmean(errors[name][2])
        print(
            f"{name:12s} localization error: 1 source {e1:5.1f} mm, 2 sources "
            f"{e2:5.1f} mm; median time {np.median(times[name]):.2f} s"
        )
    print(
        f"Coverage of the 90 % posterior intervals at the true sources: {np.mean(covered):.2f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
