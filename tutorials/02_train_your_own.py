"""
.. _tut-train:

===================================
Train a network for your head model
===================================

The pretrained network was trained for the template head with its default
conductivities (brain, skull, scalp: 0.3, 0.006, 0.3 S/m). Another head model
(another skull conductivity, an individual MRI, another source space) needs its
own network: :func:`mne_brainforge.training.train_model` trains one for any EEG
forward model, on simulated data generated on the fly. Here: the template with
a more conductive skull (0.0125 S/m) and a 74-channel EasyCap montage.

Training a usable network takes hours on a CPU (the pretrained one's
training is described in its :doc:`model card </model_card>`); this tutorial
trains for a few minutes to show the workflow: progress, checkpoints,
resuming, saving and applying the model.
"""

# License: BSD-3-Clause

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mne
import numpy as np

import mne_brainforge as bf
from mne_brainforge.simulation import build_waveform_library, fetch_waveform_library
from mne_brainforge.training import train_model

# BRAINFORGE_TUTORIAL_QUICK=1 (used by the tests) trains for a few steps only
quick = os.environ.get("BRAINFORGE_TUTORIAL_QUICK") == "1"
n_steps = 16 if quick else 300

# %%
# The head model
# --------------
# A forward model with another skull conductivity computes and caches its BEM
# solution on first use (about a minute).
subjects_dir = bf.datasets.fetch_fsaverage()
montage = mne.channels.make_standard_montage("easycap-M1")
info = mne.create_info(montage.ch_names, sfreq=500.0, ch_types="eeg")
info.set_montage(montage)
fwd = bf.make_fsaverage_forward(info, conductivity=(0.3, 0.0125, 0.3))

# %%
# The source waveforms
# --------------------
# The simulated training data draw their source time courses from a library of
# spikes and background activity simulated with The Virtual Brain's Jansen-Rit
# neural-mass model (see :doc:`/simulation`). The default library is built once
# (304 TVB runs, 5 to 15 minutes) and cached; ``train_model`` uses it unless
# given another. The quick mode builds a small one in seconds instead.
if quick:
    library = build_waveform_library(
        regions=[5, 40], settings=[(0.095, 0.75)], duration=4.0, n_background=8
    )
else:
    library = fetch_waveform_library()
print(library)

# %%
# Training
# --------
# Each step draws a batch of 16 simulated one-second windows: 1 to 3 source
# patches with library waveforms, a random subset of the channels, noise of a
# random kind at a random SNR (0 to 30 dB). A progress bar shows the loss and
# the throughput (in a terminal or notebook); every ``val_every`` steps the
# network is scored on held-out simulations (localization error, spatial
# dispersion, AUC) and the best one is kept. On a GPU (``device="auto"`` uses
# CUDA if available), each step is much faster.
#
# With ``checkpoint_dir``, the training state is saved every
# ``checkpoint_every`` seconds and at the end, and a new call with the same
# settings resumes from it: after an interruption, or to train longer (a
# larger ``steps``, the only setting that may change). Here the training runs
# in two halves.
checkpoint_dir = Path(tempfile.mkdtemp(prefix="brainforge-"))
settings = dict(
    library=library,
    checkpoint_dir=checkpoint_dir,
    val_every=n_steps // 4,
    val_samples=8 if quick else 32,
    seed=0,
)
model = train_model(fwd, steps=n_steps // 2, **settings)
print(sorted(path.name for path in checkpoint_dir.iterdir()))

# %%
# The second call resumes at step ``n_steps // 2`` and goes on to ``n_steps``:
model = train_model(fwd, steps=n_steps, **settings)
print(model)

# %%
# The validation history is in the model's configuration (saved with it):
history = model.config["training"]["history"]
steps = [record["step"] for record in history]
fig, axes = plt.subplots(1, 2, figsize=(8, 3), layout="constrained")
axes[0].plot(steps, [record["val_loss"] for record in history], "o-")
axes[0].set(xlabel="Step", title="Validation loss")
axes[1].plot(steps, [record["localization_error"] for record in history], "o-")
axes[1].set(xlabel="Step", title="Localization error (mm)")

# %%
# Save and apply the model
# ------------------------
# :meth:`~mne_brainforge.nn.BrainForgeModel.save` writes one file (weights and
# JSON metadata, no pickled code); the inverse functions accept the model
# object or the path of that file as ``model``. The network only supplies the
# prior of the sparse Bayesian solve; the evidence compares it with a flat
# prior, and the log says which one won (a network trained for a few steps
# rarely beats the flat one). A recording with one source in
# the left temporal lobe (10 mm patch, 2 nA·m per source, peaking at 100 ms;
# the magenta sphere marks its centre) and MNE's ad hoc sensor noise (0.2 µV):
fname = checkpoint_dir / "easycap-skull0.0125-brainforge.pt"
model.save(fname)

src = fwd["src"]
lh_mri = bf.datasets.read_fsaverage_source_space()[0]  # MRI (≈ MNI) coordinates
seed = int(np.argmin(np.linalg.norm(lh_mri["rr"] - [-0.055, -0.020, 0.005], axis=1)))
patch = mne.grow_labels("fsaverage", seed, 10.0, 0, subjects_dir=subjects_dir)[0]
times = np.arange(-0.1, 0.4, 1.0 / info["sfreq"])
waveform = -2e-9 * np.exp(-0.5 * ((times - 0.1) / 0.02) ** 2)
stc_true = mne.simulation.simulate_stc(
    src, [patch], waveform[np.newaxis], tmin=times[0], tstep=1.0 / info["sfreq"]
)
evoked = mne.simulation.simulate_evoked(fwd, stc_true, info, cov=None)
evoked.set_eeg_reference(projection=True)
mne.simulation.add_noise(evoked, mne.make_ad_hoc_cov(info), rng=0)

stc = bf.apply_brainforge_inverse(
    evoked, fwd, model=fname, noise_cov=mne.make_ad_hoc_cov(info)
)
brain = stc.plot(
    subject="fsaverage",
    subjects_dir=subjects_dir,
    hemi="lh",
    views="lat",
    initial_time=0.1,
    background="white",
)
brain.add_foci(seed, coords_as_verts=True, hemi="lh", color="magenta", scale_factor=0.5)

# %%
# The pretrained model would also run with this forward model (it has the
# same source space), but it was trained for the default head, so its prior
# fits this head less well (the sparse Bayesian solve itself always uses the
# forward model it is given). For another
# head model, train for as many steps as the hardware allows (``max_time``
# bounds the wall time).
