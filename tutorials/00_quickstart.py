"""
.. _tut-quickstart:

==============================================
Quickstart: EEG source imaging with BrainForge
==============================================

This tutorial estimates the cortical sources of an EEG recording with the
pretrained BrainForge network on the fsaverage template head, shows the
estimate on the cortex and extracts the time courses of cortical regions. The
recording is simulated, so the true sources are known. Everything runs offline.
"""

# License: BSD-3-Clause

# %%
import matplotlib.pyplot as plt
import mne
import numpy as np

import mne_brainforge as bf

# %%
# The template head
# -----------------
# :func:`mne_brainforge.datasets.fetch_fsaverage` builds the template subject
# ``fsaverage`` (cortex surfaces, 3-layer BEM, ico5 source space with 10242
# sources per hemisphere) from files that MNE-Python and nilearn ship, once,
# and returns its ``subjects_dir``. A forward model for any standard montage
# follows from the recording's :class:`~mne.Info`:

subjects_dir = bf.datasets.fetch_fsaverage()

montage = mne.channels.make_standard_montage("biosemi64")
info = mne.create_info(montage.ch_names, sfreq=250.0, ch_types="eeg")
info.set_montage(montage)
fwd = bf.make_fsaverage_forward(info)
print(fwd)

# %%
# A recording with known sources
# ------------------------------
# Two cortical patches of 10 mm radius are active: one in the left temporal
# lobe (an N100-like deflection peaking at 100 ms) and one in the right central
# region (peaking at 130 ms). Each is grown (:func:`mne.grow_labels`) around
# the source closest to a position in fsaverage MRI coordinates (close to MNI):
# :func:`mne_brainforge.datasets.read_fsaverage_source_space` gives the
# sources in these coordinates (the forward's are in head coordinates).
src = fwd["src"]
src_mri = bf.datasets.read_fsaverage_source_space()
positions = {"lh": [-0.055, -0.020, 0.005], "rh": [0.040, -0.020, 0.055]}  # m
seeds = [
    int(np.argmin(np.linalg.norm(s["rr"] - positions[hemi], axis=1)))
    for s, hemi in zip(src_mri, ("lh", "rh"))
]
patches = mne.grow_labels(
    "fsaverage",
    seeds,
    extents=10.0,
    hemis=[0, 1],
    subjects_dir=subjects_dir,
    names=["left temporal", "right central"],
)

times = np.arange(-0.2, 0.5, 1.0 / info["sfreq"])
waveforms = 2e-9 * np.array(  # 2 nA·m per source at the peak
    [
        -np.exp(-0.5 * ((times - 0.10) / 0.02) ** 2),
        np.exp(-0.5 * ((times - 0.13) / 0.03) ** 2),
    ]
)
stc_true = mne.simulation.simulate_stc(
    src, patches, waveforms, tmin=times[0], tstep=1.0 / info["sfreq"]
).expand([s["vertno"] for s in src])  # all sources, zero outside the patches

# %%
# :func:`mne.simulation.simulate_evoked` projects the sources through the
# forward model; :func:`mne.simulation.add_noise` adds sensor noise (1 µV
# white noise per channel, coloured in time by an IIR filter), about what
# remains in an average of a few dozen trials.
evoked = mne.simulation.simulate_evoked(fwd, stc_true, info, cov=None)
evoked.set_eeg_reference(projection=True)
noise_cov = mne.make_ad_hoc_cov(info, std=dict(eeg=1e-6))
mne.simulation.add_noise(evoked, noise_cov, iir_filter=[1, -0.9], rng=0)
evoked.plot_joint(times=[0.1, 0.13])

# %%
# The inverse solution
# --------------------
# :func:`mne_brainforge.apply_brainforge_inverse` takes the place of
# :func:`mne.minimum_norm.apply_inverse`, without an inverse operator or a
# regularization parameter. With ``model=None`` it uses the pretrained network
# for the template (:func:`mne_brainforge.load_pretrained`). The network only
# proposes a *prior*: how likely each part of the cortex is to be active. The
# estimate comes from a sparse Bayesian (Champagne) solve on the data,
# whitened by the noise covariance (here the ad-hoc one the noise was drawn
# with; without one an ad-hoc covariance is used); the solve is run from the
# network's prior and from a flat one, and the evidence (marginal likelihood
# of the data) decides which is kept: the log says which. The estimate has the
# data's times: cortex-normal dipole moments on the forward's sources, most of
# them exactly zero.
stc = bf.apply_brainforge_inverse(evoked, fwd, noise_cov=noise_cov)
print(stc)

# %%
# The result is an ordinary :class:`mne.SourceEstimate` of subject
# ``fsaverage``: it plots in MNE's 3D viewer. The true patch centres are the
# magenta spheres.
brain = stc.plot(
    subject="fsaverage",
    subjects_dir=subjects_dir,
    hemi="split",
    views="lat",
    initial_time=0.115,
    size=(1000, 450),
    background="white",
)
for seed, hemi in zip(seeds, ("lh", "rh")):
    brain.add_foci(
        seed, coords_as_verts=True, hemi=hemi, color="magenta", scale_factor=0.5
    )

# %%
# How far is the estimate's peak from the truth? :meth:`~mne.SourceEstimate.get_peak`
# gives the vertex of the largest value in each hemisphere.
for hemi, s, seed in zip(("lh", "rh"), src, seeds):
    vertex, peak_time = stc.get_peak(hemi=hemi, mode="abs")
    error = np.linalg.norm(s["rr"][vertex] - s["rr"][seed]) * 1e3
    print(
        f"{hemi}: peak at {peak_time * 1e3:.0f} ms, {error:.0f} mm from the true centre"
    )

# %%
# Region time courses
# -------------------
# :func:`mne.extract_label_time_course` gives the mean time course of any
# cortical region (a :class:`mne.Label`). The network's 500 regions (its
# parcellation, which shapes its prior) are available as labels; here: the
# regions that contain the true patch centres, for the estimate and for the
# truth. A sparse estimate concentrates the moment on fewer sources than the
# truth's patches, so the region means are compared, not single sources.
model = bf.load_pretrained()
print(model)
regions = model.parcellation.to_labels()
picked = [
    next(label for label in regions if label.hemi == hemi and seed in label.vertices)
    for hemi, seed in zip(("lh", "rh"), seeds)
]
estimated = mne.extract_label_time_course(stc, picked, src, mode="mean")
true = mne.extract_label_time_course(stc_true, picked, src, mode="mean")

fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
for k, (label, patch) in enumerate(zip(picked, patches)):
    name = f"{patch.name} ({label.name})"
    ax.plot(stc.times * 1e3, estimated[k] * 1e9, color=f"C{k}", label=name)
    ax.plot(stc.times * 1e3, true[k] * 1e9, color=f"C{k}", ls="--")
ax.set(
    xlabel="Time (ms)",
    ylabel="Dipole moment (nA·m)",
    title="Region time courses: estimate (solid) and truth (dashed)",
)
ax.legend(loc="lower right")

# %%
# The same estimates work with everything else MNE-Python offers for source
# estimates: morphing (:func:`mne.compute_source_morph`), saving
# (:meth:`~mne.SourceEstimate.save`), statistics. Next:
# :ref:`sphx_glr_auto_tutorials_01_compare_methods.py` compares BrainForge with
# sparse and classical inverses on independently generated test data.
