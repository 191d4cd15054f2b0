"""
.. _tut-compare-methods:

====================================================
BrainForge next to sparse and classical inverses
====================================================

This tutorial draws one test case with known sources from the package's
independent test-data generator, estimates its sources with BrainForge, plain
sparse Bayesian learning, MxNE, gamma-MAP, sLORETA and dSPM, looks at what
BrainForge reports about its own estimate (which prior the evidence chose, the
residual, the posterior uncertainty) and scores every estimate against the
truth. The numbers are those of one simulation: they illustrate the tools, they
do not rank the methods (see :doc:`/benchmarks` for that).
"""

# License: BSD-3-Clause

# %%
import os

import matplotlib.pyplot as plt
import mne
import numpy as np

import mne_brainforge as bf
from mne_brainforge.evaluation.runner import METRICS, score
from mne_brainforge.evaluation.testdata import make_test_case, make_truth_forward
from mne_brainforge.head import source_graph
from mne_brainforge.viz import plot_source_maps

# BRAINFORGE_TUTORIAL_QUICK=1 (used by the tests) simulates shorter data
quick = os.environ.get("BRAINFORGE_TUTORIAL_QUICK") == "1"

# %%
# A test case the methods have not seen
# -------------------------------------
# :func:`~mne_brainforge.evaluation.testdata.make_test_case` generates data
# independently of the simulator the network was trained with: its own source
# model (discs grown along the cortical mesh around random vertices, not the
# network's regions), waveforms and noise. The data also come from another
# head than the one the methods get (no "inverse crime"):
# :func:`~mne_brainforge.evaluation.testdata.make_truth_forward` with the truth
# head ``"jitter-4mm+skull-1/40"`` displaces every electrode by 4 mm (RMS) and
# uses a skull conductivity of 1/40 of the brain's (0.0083 S/m instead of the
# template's 0.006 S/m). The methods all get the nominal template forward.
#
# Two sources of 10 mm radius with ERP-like waveforms, pink sensor noise at an
# SNR of 5 dB (the package's definition: average-referenced signal power over
# noise power), and the noise covariance estimated from noise-only data of the
# same model:
montage = mne.channels.make_standard_montage("biosemi64")
info = mne.create_info(montage.ch_names, sfreq=250.0, ch_types="eeg")
info.set_montage(montage)
fwd = bf.make_fsaverage_forward(info)  # what the methods get
fwd_true = make_truth_forward(info, "jitter-4mm+skull-1/40", seed=0)  # the data's
case = make_test_case(
    info,
    fwd_true,
    n_sources=2,
    snr_db=5.0,
    extent_mm=10.0,
    shape="disc",
    waveform="erp",
    noise="pink",
    duration=0.6 if quick else 1.0,
    head="jitter-4mm+skull-1/40",
    seed=7,
)
evoked, noise_cov, truth = case.evoked, case.noise_cov, case.truth
print(
    f"{case.n_sources} sources, {case.separation_mm:.0f} mm apart, SNR {case.snr_db} dB"
)
evoked.plot_joint()

# %%
# Compute the inverse solutions
# -----------------------------
# :func:`mne_brainforge.compare_inverse_methods` runs each method with the same
# forward model and noise covariance. BrainForge uses its network only as a
# prior over the sources; a noise-whitened sparse Bayesian (Champagne) solve
# makes the estimate from the data, and the evidence (marginal likelihood)
# decides between the network's prior and a flat one. ``'sparse-bayes'`` is
# that solve from the flat prior alone (no network). sLORETA and dSPM come from
# MNE-Python inverse operators with MNE's defaults; MxNE and gamma-MAP are
# MNE-Python's sparse solvers (gamma-MAP takes a minute or more on a CPU).
methods = ("brainforge", "sparse-bayes", "MxNE", "gamma-MAP", "sLORETA", "dSPM")
stcs = bf.compare_inverse_methods(evoked, fwd, noise_cov, methods=methods)

# %%
# Each estimate's energy (RMS over time) on the cortex, next to the truth's,
# each with its own colour scale (the units differ: BrainForge, the sparse
# methods and the truth give dipole moments in A·m, sLORETA and dSPM
# noise-normalized values):
plot_source_maps({"truth": truth.stc, **stcs}, time="energy")

# %%
# What BrainForge reports about its estimate
# ------------------------------------------
# The log says which prior the evidence chose (the network's or the flat
# one), with the log-evidence of each, and how much of the whitened data the
# estimate explains. ``return_residual=True`` returns what the estimate does
# not explain (the projected data minus the forward projection of the
# estimate), ``return_uncertainty=True`` the posterior standard deviation of
# every source.
#
# (The residual needs the average-reference projector not yet applied, as in a
# recording; the test case comes with it applied, so the data get a fresh copy
# of their Info with the projector added but inactive.)
info_raw = mne.create_info(evoked.ch_names, evoked.info["sfreq"], "eeg")
info_raw.set_montage(montage)
recording = mne.EvokedArray(evoked.data, info_raw, tmin=evoked.times[0], nave=1)
recording.set_eeg_reference(projection=True)
with mne.utils.catch_logging(verbose=True) as log:
    stc, residual, std = bf.apply_brainforge_inverse(
        recording,
        fwd,
        noise_cov=noise_cov,
        return_residual=True,
        return_uncertainty=True,
    )
print("\n".join(line for line in log.getvalue().splitlines() if "vidence" in line))

fig, axes = plt.subplots(
    2, 1, figsize=(7, 5), sharex=True, sharey=True, layout="constrained"
)
evoked.plot(axes=axes[0], show=False, time_unit="ms")
residual.plot(axes=axes[1], show=False, time_unit="ms")
axes[1].set_title("Residual (BrainForge)")

# %%
# The posterior standard deviation is largest where the solve kept sources
# active and shrinks to zero where it pruned them: it says how well the data
# pin down each active source's moment, not how likely a location is.
active = np.abs(stc.data).max(axis=1) > 0
print(
    f"{active.sum()} active sources; posterior s.d. {np.median(std.data[active]):.2g} "
    f"A·m (median over them), {std.data[~active].max():.2g} A·m elsewhere (largest)"
)
plot_source_maps({"BrainForge": stc, "posterior s.d.": std}, time="energy")

# %%
# How close to the truth?
# -----------------------
# :func:`mne_brainforge.evaluation.runner.score` computes the benchmark's
# metrics (none of them uses a parcellation): the localization error (mm,
# from each true centre to the estimate's nearest local maximum), the spatial
# dispersion (mm, how far the estimated energy spreads from the true sources),
# the AUC (true sources against distant ones), the correlation of the time
# courses, the earth mover's distance (mm) between the true and estimated
# energy maps and the average precision of the active sources.
src = fwd["src"]
graph = source_graph(src)
scores = {method: score(stc, truth, src, graph) for method, stc in stcs.items()}
print(f"{'':>12}" + "".join(f"{name[:12]:>14}" for name in METRICS))
for method, values in scores.items():
    print(f"{method:>12}" + "".join(f"{values[name]:14.3g}" for name in METRICS))

# %%
# The same as bars (lower is better for localization error, spatial
# dispersion and EMD, higher for the others):
fig, axes = plt.subplots(1, len(METRICS), figsize=(13, 2.8), layout="constrained")
for ax, name in zip(axes, METRICS):
    ax.bar(
        range(len(scores)),
        [values[name] for values in scores.values()],
        color=[f"C{k}" for k in range(len(scores))],
    )
    ax.set_xticks(range(len(scores)), list(scores), rotation=60)
    ax.set_title(name.replace("_", " "), fontsize=9)

# %%
# This is one test case of one source configuration, noise level and head
# mismatch: another seed can reorder the methods. The benchmark
# (:func:`mne_brainforge.evaluation.run_benchmark`, results in
# :doc:`/benchmarks`) runs the same generator and scores over montages, SNRs,
# numbers and shapes of sources and truth heads.
