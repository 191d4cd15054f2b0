"""
.. _tut-deep-sources:

==============================================
Deep sources: thalamus and cortex together
==============================================

The template has deep structures as well as the cortex: thalamus,
hippocampus, amygdala, caudate and putamen on a 5 mm grid, built offline from
nilearn's MNI152 grey-matter map and the labelled subcortical centres of
Seitzman et al. (2018) (:func:`~mne_brainforge.head.make_deep_source_space`).
``make_fsaverage_forward(info, deep=True)`` gives the mixed forward, and every
method returns an :class:`mne.MixedSourceEstimate` on it.

This tutorial simulates a left-thalamic source together with a cortical one,
estimates them with BrainForge, sparse Bayes and MNE's classical inverses on
the same mixed source space, and looks at where each method puts the
activity. One simulation illustrates the tools; what EEG resolves in the deep
structures, by SNR and channel count, is in the deep benchmark
(``docs/benchmarks/deep/deep.md``).
"""

# License: BSD-3-Clause

# %%
import os

import matplotlib.pyplot as plt
import mne

import mne_brainforge as bf
from mne_brainforge.evaluation.deep import make_deep_test_case, score_deep
from mne_brainforge.evaluation.methods import make_methods
from mne_brainforge.evaluation.testdata import make_truth_forward
from mne_brainforge.viz import plot_glass_brain, plot_source_maps

# BRAINFORGE_TUTORIAL_QUICK=1 (used by the tests): a 32-channel cap, fewer methods
quick = os.environ.get("BRAINFORGE_TUTORIAL_QUICK") == "1"

# %%
# The mixed source space
# ----------------------
# Each structure is a discrete source space of free-orientation sources (three
# dipoles each) after the two cortical surfaces. Where they are on the
# template:
montage = mne.channels.make_standard_montage("biosemi32" if quick else "biosemi64")
info = mne.create_info(montage.ch_names, sfreq=250.0, ch_types="eeg")
info.set_montage(montage)
fwd = bf.make_fsaverage_forward(info, deep=True)
print(fwd["src"])
fig = plot_glass_brain(fwd["src"])

# %%
# A thalamic and a cortical source
# --------------------------------
# :func:`~mne_brainforge.evaluation.deep.make_deep_test_case` draws the data
# from a head the methods never get (4 mm electrode jitter, a 1/40 skull) on a
# deep grid of its own, shifted by half a step, so the true thalamic source is
# 4.3 mm from the nearest source of the estimates. The thalamic source has a
# peak moment of 50 nA·m and a random orientation; the cortical one is a
# Gaussian disc of 5-15 mm radius; SNR 10 dB.
fwd_true = make_truth_forward(info, "jitter-4mm+skull-1/40", deep=True)
case = make_deep_test_case(
    info, fwd_true, condition="deep+cortex", structure="thalamus", seed=3
)
case.evoked.plot_joint(times="peaks", show=False)

# %%
# Every method on the same mixed forward
# --------------------------------------
# MNE's minimum-norm methods get ``loose=dict(surface=0.2, discrete=1)`` and
# return unsigned amplitudes; BrainForge's network sets the prior of the
# cortex, the deep sources start flat, and the evidence decides.
names = ["BrainForge", "sparse Bayes", "sLORETA", "dSPM", "eLORETA"]
if not quick:
    names += ["MNE", "LCMV"]
methods = make_methods(names)
stcs = {
    name: method(case.evoked, fwd, case.noise_cov) for name, method in methods.items()
}
print(type(stcs["BrainForge"]).__name__)

# %%
# Where the activity is
# ---------------------
# A glass brain per method: every source above half of the estimate's maximum
# (squares: deep sources), the true sources as crosses. A deep structure counts
# as detected when its sources on the true side reach that half maximum;
# ``score_deep`` also gives the deep localization error, the share of the
# estimate's energy on deep sources and false deep detections.
truth = [case.deep_position, *case.cortex_positions]
fig, axes = plt.subplots(
    len(stcs), 3, figsize=(10, 3 * len(stcs)), layout="constrained"
)
for row, (name, stc) in zip(axes, stcs.items()):
    plot_glass_brain(fwd["src"], stc, truth=truth, title=name, axes=row)
for name, stc in stcs.items():
    scores = score_deep(stc, fwd["src"], case)
    print(
        f"{name:13s} thalamus found: {scores['detected']!s:5s}  deep LE "
        f"{scores['deep_error_mm']:5.1f} mm  false deep: {scores['false_deep']!s:5s}  "
        f"cortex LE {scores['cortex_error_mm']:5.1f} mm  deep share "
        f"{scores['deep_share']:.2f}"
    )

# %%
# The cortical part in MNE's 3D viewer
# ------------------------------------
# ``stc.surface()`` is the cortical part of a mixed estimate, an ordinary
# :class:`mne.SourceEstimate` that MNE's viewer (and
# :func:`~mne_brainforge.viz.plot_source_maps`) shows.
plot_source_maps(
    {name: stcs[name].surface() for name in ("BrainForge", "sLORETA")}, time="energy"
)
