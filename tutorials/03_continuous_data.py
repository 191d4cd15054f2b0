"""
.. _tut-continuous:

==============================================
Source estimates of continuous data and epochs
==============================================

:func:`mne_brainforge.apply_brainforge_inverse_raw` and
:func:`mne_brainforge.apply_brainforge_inverse_epochs` are the BrainForge
counterparts of :func:`mne.minimum_norm.apply_inverse_raw` and
:func:`mne.minimum_norm.apply_inverse_epochs`. This tutorial applies them to a
long simulated recording with sporadic interictal spikes from the left temporal
lobe, a typical use of EEG source imaging.
"""

# License: BSD-3-Clause

# %%
import os
import time

import matplotlib.pyplot as plt
import mne
import numpy as np

import mne_brainforge as bf

# BRAINFORGE_TUTORIAL_QUICK=1 (used by the tests) simulates a shorter recording
# and estimates only a few of its epochs
quick = os.environ.get("BRAINFORGE_TUTORIAL_QUICK") == "1"
duration = 30.0 if quick else 600.0  # s

# %%
# A long recording
# ----------------
# A 64-channel recording of ``duration`` seconds at 250 Hz: spikes (a sharp
# negative peak followed by a slow wave; 10 nA·m per source at the peak) from a
# patch of the left temporal lobe of 20 mm radius (about 12 cm² of cortex:
# spikes need that much to show on the scalp), every 2 to 6 s, on top of
# coloured sensor noise (5 µV per channel).
subjects_dir = bf.datasets.fetch_fsaverage()
montage = mne.channels.make_standard_montage("biosemi64")
info = mne.create_info(montage.ch_names, sfreq=250.0, ch_types="eeg")
info.set_montage(montage)
fwd = bf.make_fsaverage_forward(info)
src = fwd["src"]

lh_mri = bf.datasets.read_fsaverage_source_space()[0]  # MRI (≈ MNI) coordinates
seed = int(np.argmin(np.linalg.norm(lh_mri["rr"] - [-0.055, -0.020, -0.010], axis=1)))
patch = mne.grow_labels("fsaverage", seed, 20.0, 0, subjects_dir=subjects_dir)[0]
spike_times = np.arange(-0.1, 0.4, 1.0 / info["sfreq"])
spike = -np.exp(-0.5 * (spike_times / 0.015) ** 2) + 0.3 * np.exp(
    -0.5 * ((spike_times - 0.1) / 0.05) ** 2
)
spike *= 10e-9

rng = np.random.default_rng(0)
onsets = np.cumsum(rng.uniform(2.0, 6.0, int(duration / 2)))
onsets = onsets[onsets < duration - 1.0]
events = np.column_stack(
    [
        np.round(onsets * info["sfreq"]).astype(int),
        np.zeros(len(onsets), int),
        np.ones(len(onsets), int),
    ]
)
source_simulator = mne.simulation.SourceSimulator(
    src, tstep=1.0 / info["sfreq"], duration=duration
)
source_simulator.add_data(patch, spike, events)
raw = mne.simulation.simulate_raw(info, source_simulator, forward=fwd)
raw.set_eeg_reference(projection=True)
noise_cov = mne.make_ad_hoc_cov(info, std=dict(eeg=5e-6))
mne.simulation.add_noise(raw, noise_cov, iir_filter=[1, -0.5], rng=0)
# the spike peaks, 0.1 s after each event (the waveform starts at -0.1 s)
events[:, 0] += int(0.1 * info["sfreq"])
temporal = ["F7", "FT7", "T7", "TP7", "P7", "F8", "FT8", "T8", "TP8", "P8"]
raw.plot(events=events, duration=10.0, picks=temporal, scalings=dict(eeg=50e-6))

# %%
# The estimate of the whole recording
# -----------------------------------
# The network gives the prior: it sees the data resampled to its sampling
# rate in half-overlapping windows of fixed length, each window counting with
# its data power (a progress bar shows from 100 windows on). The estimate is
# learned from the data covariance of the whole span: one set of source
# variances (sparse Bayesian learning, started from the network's prior and
# from a flat one, the evidence choosing), hence one linear kernel from the
# channels to the sources, applied to every sample at the data's own rate. The
# span should therefore be one state (here: the same spike source throughout);
# estimate segments separately when the sources change. The noise covariance
# whitens data and gain, as for MNE's inverse operators.
model = bf.load_pretrained()
window = model.n_times / model.sfreq
print(f"Network: {model.n_times} samples at {model.sfreq:g} Hz ({window:g} s windows)")

t0 = time.perf_counter()
stc = bf.apply_brainforge_inverse_raw(raw, fwd, model=model, noise_cov=noise_cov)
elapsed = time.perf_counter() - t0
n_windows = int(2 * raw.times[-1] / window)
print(f"{raw.times[-1]:.0f} s of data (about {n_windows} windows) in {elapsed:.1f} s")
print(f"Estimate: {stc.shape[0]} sources x {stc.shape[1]} time points")

# %%
# The estimate holds the sensor data and the sources-by-channels kernel (the
# ``(kernel, sens_data)`` form of :class:`mne.SourceEstimate`): the full
# array of 20484 sources by all time points (about 2.5 GB per minute at
# 250 Hz) is formed only when ``stc.data`` is accessed, as by any method that
# needs it (``print(stc)`` included: its summary reports the data size).
# :meth:`~mne.SourceEstimate.transform_data` reads the time courses of some
# sources without forming it: here, those of the region of the network's
# parcellation (used as a convenient set of cortical labels) that contains the
# true source, over the whole recording.
regions = model.parcellation.to_labels()
region = next(
    label for label in regions if label.hemi == "lh" and seed in label.vertices
)
rows = np.searchsorted(stc.vertices[0], region.vertices)  # left hemisphere rows
course = stc.transform_data(lambda data: data, idx=rows).mean(axis=0)

peaks = events[:, 0] / info["sfreq"]
fig, ax = plt.subplots(figsize=(9, 2.5), layout="constrained")
ax.vlines(peaks, 0, 1, transform=ax.get_xaxis_transform(), color="C3", lw=0.5)
ax.plot(stc.times, 1e9 * course, lw=0.5)
ax.set(
    xlabel="Time (s)",
    ylabel="Dipole moment (nA·m)",
    title=f"Region {region.name} (red: the simulated spikes)",
)

# %%
# For cortical maps, estimate a segment: ``start`` and ``stop`` (in samples,
# as in :func:`mne.minimum_norm.apply_inverse_raw`) restrict the computation
# to it, and the source variances are then learned from that segment alone.
# Here a few seconds around the first spike (the magenta sphere marks the true
# patch centre):
start, stop = raw.time_as_index([peaks[0] - 2.0, peaks[0] + 2.0])
segment = bf.apply_brainforge_inverse_raw(
    raw, fwd, model=model, noise_cov=noise_cov, start=start, stop=stop
)
brain = segment.plot(
    subject="fsaverage",
    subjects_dir=subjects_dir,
    hemi="lh",
    views="lat",
    initial_time=peaks[0],
    background="white",
)
brain.add_foci(seed, coords_as_verts=True, hemi="lh", color="magenta", scale_factor=0.5)

# %%
# Epochs
# ------
# Epochs around the spikes (as a spike detector would give them) get one
# estimate each, with its own prior and solve (the estimate of that epoch as an
# evoked response of one trial); with ``return_generator=True`` they are computed one at a
# time as they are consumed, so that any number of epochs fits in memory. Here
# they go straight into :func:`mne.extract_label_time_course`, for the same
# region.
epochs = mne.Epochs(raw, events, tmin=-0.3, tmax=0.5, baseline=None, preload=True)
if quick:
    epochs = epochs[:3]

t0 = time.perf_counter()
stcs = bf.apply_brainforge_inverse_epochs(
    epochs, fwd, model=model, noise_cov=noise_cov, return_generator=True, verbose=False
)
time_courses = mne.extract_label_time_course(
    stcs, [region], src, mode="mean", verbose=False
)
print(f"{len(epochs)} epochs in {time.perf_counter() - t0:.1f} s")

# %%
# The region's time course in each epoch and averaged, next to the estimate of
# the averaged epochs:
stc_average = bf.apply_brainforge_inverse(
    epochs.average(), fwd, model=model, noise_cov=noise_cov
)
average_course = mne.extract_label_time_course(stc_average, [region], src, mode="mean")
fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
times = 1e3 * epochs.times
for epoch_course in time_courses:
    ax.plot(times, 1e9 * epoch_course[0], color="0.8", lw=0.5)
ax.plot(
    times,
    1e9 * np.mean(time_courses, axis=0)[0],
    color="C0",
    label="mean of the epochs' estimates",
)
ax.plot(
    times, 1e9 * average_course[0], color="C1", ls="--", label="estimate of the average"
)
ax.set(xlabel="Time (ms)", ylabel="Dipole moment (nA·m)", title=region.name)
ax.legend()
