"""Named settings of ``brainforge train`` that made the released models.

A preset fills the options of ``brainforge train`` that the command line does
not set, so a released model is reproduced by one short command, e.g.
``brainforge train --preset fsaverage-brainforge --out weights/fsaverage-brainforge.pt``.
"""

#: preset name -> ``brainforge train`` options (argparse destinations)
PRESETS = {
    # The pretrained template model: dense cap whose random and evenly spread
    # subsets (16-128 channels) stand for any montage, 1-3 sources, 0-30 dB.
    "fsaverage-brainforge": dict(
        montage="biosemi128",
        n_channels=(16, 128),
        max_sources=3,
        snr=(0.0, 30.0),
        n_regions=500,
        steps=3600,
        batch_size=16,
        lr=1e-3,
        max_time=3000.0,
        seed=0,
        checkpoint_dir="out/checkpoints/fsaverage-brainforge",
    ),
    # The 64-channel model of the network issue: <= 20 minutes of CPU training.
    "biosemi64-20min": dict(
        montage="biosemi64",
        n_channels=(48, 64),
        max_sources=3,
        snr=(0.0, 30.0),
        n_regions=500,
        steps=2200,
        batch_size=16,
        lr=1e-3,
        max_time=1200.0,
        seed=0,
        checkpoint_dir="out/checkpoints/biosemi64-20min",
    ),
}
