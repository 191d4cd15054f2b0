"""
.. _tut-compare-methods:

======================================================
BrainForge, sLORETA, eLORETA and dSPM on the same data
======================================================

This tutorial follows MNE-Python's "Source localization with MNE, dSPM,
sLORETA, and eLORETA" on a simulated auditory experiment: epochs, a noise
covariance from the pre-stimulus baseline, the evoked response, then the
inverse solutions side by side, the residual, and how close each is to the
known sources.
"""

# License: BSD-3-Clause

# %%
import os

import matplotlib.pyplot as plt
import mne
import numpy as np

import mne_brainforge as bf
from mne_brainforge import metrics
from mne_brainforge.evaluation.benchmark import TRUE_HEAD
from mne_brainforge.head import source_graph

# BRAINFORGE_TUTORIAL_QUICK=1 (used by the tests) simulates fewer trials
n_trials = 20 if os.environ.get("BRAINFORGE_TUTORIAL_QUICK") == "1" else 100

# %%
# Simulate the data
# -----------------
# A 64-channel recording of ``n_trials`` auditory stimuli, one per second.
# Each evokes the same response in the left and right auditory cortices (10 mm
# patches, 2 nA·m per source, peaking at 100 ms); the recording adds coloured
# sensor noise (10 µV per channel).
#
# To avoid the "inverse crime", the data come from another head model than the
# one the inverse methods get: conductivities of 0.33, 0.0105 and 0.33 S/m
# (brain, skull, scalp) instead of 0.3, 0.006 and 0.3 S/m, and a skull at most
# 5.5 mm thick instead of 7 mm, as in the package's benchmark.
subjects_dir = bf.datasets.fetch_fsaverage()
montage = mne.channels.make_standard_montage("biosemi64")
info = mne.create_info(montage.ch_names, sfreq=250.0, ch_types="eeg")
info.set_montage(montage)
fwd = bf.make_fsaverage_forward(info)  # what the methods get
fwd_true = bf.make_fsaverage_forward(info, **TRUE_HEAD)  # what made the data
src = fwd["src"]

src_mri = bf.datasets.read_fsaverage_source_space()  # MRI (≈ MNI) coordinates
positions = {"lh": [-0.055, -0.020, 0.005], "rh": [0.055, -0.020, 0.005]}  # m
seeds = [
    int(np.argmin(np.linalg.norm(s["rr"] - positions[hemi], axis=1)))
    for s, hemi in zip(src_mri, ("lh", "rh"))
]
patches = mne.grow_labels(
    "fsaverage", seeds, extents=10.0, hemis=[0, 1], subjects_dir=subjects_dir
)
response_times = np.arange(0.0, 0.5, 1.0 / info["sfreq"])
response = -2e-9 * np.exp(-0.5 * ((response_times - 0.1) / 0.02) ** 2)

events = np.column_stack(
    [
        np.arange(n_trials) * int(info["sfreq"]) + 50,
        np.zeros(n_trials, int),
        np.ones(n_trials, int),
    ]
)
source_simulator = mne.simulation.SourceSimulator(
    src, tstep=1.0 / info["sfreq"], duration=float(n_trials)
)
for patch in patches:
    source_simulator.add_data(patch, response, events)
raw = mne.simulation.simulate_raw(info, source_simulator, forward=fwd_true)
raw.set_eeg_reference(projection=True)
noise_cov_true = mne.make_ad_hoc_cov(info, std=dict(eeg=10e-6))
mne.simulation.add_noise(raw, noise_cov_true, iir_filter=[1, -0.5], rng=0)

# %%
# From here on, the analysis is what it would be with a real recording:
# epochs, a noise covariance from the baseline, the evoked response.
epochs = mne.Epochs(raw, events, tmin=-0.2, tmax=0.5, baseline=(None, 0), preload=True)
noise_cov = mne.compute_covariance(epochs, tmax=0.0, method=["shrunk", "empirical"])
evoked = epochs.average()
evoked.plot_joint(times=[0.1])

# %%
# Compute the inverse solutions
# -----------------------------
# :func:`mne_brainforge.compare_inverse_methods` computes the BrainForge
# estimate (pretrained network; it needs no noise covariance) and MNE's
# classical ones from one inverse operator per method, made from the same
# forward model and noise covariance with MNE's defaults (``loose=0.2,
# depth=0.8``, ``lambda2 = 1 / 9``), all signed (``pick_ori='normal'``).
stcs = bf.compare_inverse_methods(
    evoked, fwd, noise_cov, methods=("brainforge", "sLORETA", "eLORETA", "dSPM")
)

# %%
# Visualization
# -------------
# The activation time series of every 100th source, for each method. The
# units differ: BrainForge and eLORETA give dipole moments (A·m), dSPM and
# sLORETA noise-normalized values.
fig, axes = plt.subplots(2, 2, figsize=(8, 5), sharex=True, layout="constrained")
for ax, (method, stc) in zip(axes.flat, stcs.items()):
    ax.plot(1e3 * stc.times, stc.data[::100, :].T)
    ax.set(title=method, xlabel="Time (ms)" if ax in axes[1] else None)

# %%
# The estimates on the cortex at the peak of the response, each with its own
# colour scale (:func:`mne_brainforge.plot_inverse_comparison` renders each
# with :meth:`mne.SourceEstimate.plot`):
bf.plot_inverse_comparison(stcs, subjects_dir, time=0.1)

# %%
# Examine the data and the residual
# ---------------------------------
# As :func:`mne.minimum_norm.apply_inverse`, the BrainForge inverse can return
# what the estimate does not explain: the data minus the forward projection of
# the estimate.
stc, residual = bf.apply_brainforge_inverse(evoked, fwd, return_residual=True)
fig, axes = plt.subplots(
    2, 1, figsize=(7, 5), sharex=True, sharey=True, layout="constrained"
)
evoked.plot(axes=axes[0], show=False, time_unit="ms")
residual.plot(axes=axes[1], show=False, time_unit="ms")
axes[1].set_title("Residual (BrainForge)")

# %%
# How close to the truth?
# -----------------------
# The simulation gives the true sources, so :mod:`mne_brainforge.metrics`
# can score each estimate: the localization error (distance from each true
# patch centre to its estimated maximum), the spatial dispersion (how far the
# estimated energy spreads from the true patches), the AUC (true-patch sources
# against sources more than 20 mm away), the normalized MSE and the
# correlation of the time courses, and the precision and recall of the
# active regions.
hemis = ("lh", "rh")
offsets = {"lh": 0, "rh": len(src[0]["vertno"])}


def rows_of(hemi, vertices):
    """Rows of ``stc.data`` of some vertices of a hemisphere."""
    return offsets[hemi] + np.searchsorted(src[hemis.index(hemi)]["vertno"], vertices)


patch_rows = [rows_of(patch.hemi, patch.vertices) for patch in patches]
centre_rows = [rows_of(hemi, seed) for hemi, seed in zip(hemis, seeds)]
true_data = np.zeros((fwd["nsource"], len(evoked.times)))
for rows in patch_rows:
    true_data[rows] = np.interp(evoked.times, response_times, response, left=0, right=0)
true_stc = mne.SourceEstimate(
    true_data,
    [s["vertno"] for s in src],
    evoked.times[0],
    1.0 / info["sfreq"],
    "fsaverage",
)
truth = metrics.GroundTruth(true_stc, patch_rows, centre_rows)

graph = source_graph(src)
regions = bf.load_pretrained().parcellation.labels
scores = {
    method: metrics.evaluate(stc, truth, src, graph, regions)
    for method, stc in stcs.items()
}
print(f"{'':>12}" + "".join(f"{name[:12]:>14}" for name in metrics.METRICS))
for method, values in scores.items():
    print(
        f"{method:>12}" + "".join(f"{values[name]:14.3g}" for name in metrics.METRICS)
    )

# %%
# The same as bars (lower is better for the first three):
fig, axes = plt.subplots(
    1, len(metrics.METRICS), figsize=(12, 2.8), layout="constrained"
)
for ax, name in zip(axes, metrics.METRICS):
    ax.bar(
        range(len(scores)),
        [values[name] for values in scores.values()],
        color=[f"C{k}" for k in range(len(scores))],
    )
    ax.set_xticks(range(len(scores)), list(scores), rotation=60)
    ax.set_title(name.replace("_", " "), fontsize=9)

# %%
# One simulation is an anecdote: :doc:`/benchmarks/classical/results` compares
# the methods over montages, SNRs and numbers of sources, and
# :func:`mne_brainforge.evaluation.benchmark.run_benchmark` runs such
# comparisons for any set of methods.
