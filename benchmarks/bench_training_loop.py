"""Training-loop speed: the batched engine (train_prior) vs the first round's loop (train_model).

Run:  python benchmarks/bench_training_loop.py docs/benchmarks/training_loop.json
Same network (:class:`~mne_brainforge.nn.BrainForgeNet`, default size, 500 regions),
same batch size (16), template forward on BioSemi 64 at 100 Hz, 1 s windows, one
process. ``train_model`` draws its windows with the per-window ``EEGSimulator``
in one DataLoader worker; ``train_prior`` draws whole batches with
``BatchedEEGGenerator`` in the training process. Each loop runs twice (a few
steps, then more); the difference divided by the extra steps is the time per
step without set-up. A reduced TVB library (19 target regions x 2 settings) is
simulated for both (minutes); the engine's regimes are simulated too. Timings of
one run are comparable with each other; the load average is recorded.
"""

import json
import os
import sys
import time

import mne
import numpy as np

import mne_brainforge as bf
from mne_brainforge.head import HeadModelFamily, make_montage_info
from mne_brainforge.simulation import (
    BatchedEEGGenerator,
    build_waveform_library,
    make_waveform_bank,
)
from mne_brainforge.simulation.library import DEFAULT_SETTINGS
from mne_brainforge.training import train_model
from mne_brainforge.training.prior import train_prior

BATCH, FEW, MORE = 16, 5, 45


def _seconds_per_step(train):
    """Time per step of ``train(steps)`` without its set-up."""
    times = {}
    for steps in (FEW, MORE):
        t0 = time.perf_counter()
        train(steps)
        times[steps] = time.perf_counter() - t0
    return (times[MORE] - times[FEW]) / (MORE - FEW)


def main(out=None):
    mne.set_log_level("error")
    info = make_montage_info("biosemi64", 100.0)
    fwd = bf.make_fsaverage_forward(info, verbose="error")
    library = build_waveform_library(
        regions=np.arange(0, 76, 4), settings=DEFAULT_SETTINGS[:2], verbose="error"
    )
    family = HeadModelFamily([fwd])
    generator = BatchedEEGGenerator(
        family,
        make_waveform_bank(library, sfreq=100.0, n_times=100),
        channel_sets=[family.channel_set("biosemi64")],
    )
    load_start = os.getloadavg()
    old = _seconds_per_step(
        lambda steps: train_model(
            fwd,
            library=library,
            steps=steps,
            batch_size=BATCH,
            val_every=10**6,
            val_samples=1,
            num_workers=1,
        )
    )
    new = _seconds_per_step(
        lambda steps: train_prior(generator, steps=steps, batch_size=BATCH)
    )
    results = dict(
        setting=f"batch {BATCH}, BioSemi 64, 100 Hz, 1 s windows, one process",
        load_average=dict(start=load_start, end=os.getloadavg()),
        cpus=len(os.sched_getaffinity(0)),
        train_model_s_per_step=old,
        train_prior_s_per_step=new,
        train_model_steps_per_s=1 / old,
        train_prior_steps_per_s=1 / new,
        speedup=old / new,
    )
    print(json.dumps(results, indent=1))
    if out:
        with open(out, "w") as fid:
            json.dump(results, fid, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:2])
