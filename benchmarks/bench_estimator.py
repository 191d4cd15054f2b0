"""Speed of the BrainForge estimate (network prior + sparse Bayesian solve) on the CPU.

Run:  MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT=true python benchmarks/bench_estimator.py \\
          docs/benchmarks/estimator.json

Per 1 s window of 64 channels at 100 Hz (the network's rate): the network alone
(``predict_regions``), the whole BrainForge estimate (prior + two solves, evidence),
the flat sparse Bayesian solve alone and sLORETA's ``apply_inverse`` (after its
operator is made). Timings of one run are comparable with each other (same load);
the machine's load average is recorded.
"""

import json
import os
import sys
import time

import mne
import numpy as np

import mne_brainforge as bf
from mne_brainforge.head import cortex_normal, make_montage_info
from mne_brainforge.inverse import MNEInverse


def _median_time(func, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return (
        float(np.median(times)),
        float(np.percentile(times, 10)),
        float(np.percentile(times, 90)),
    )


def main(out=None, n=5):
    info = make_montage_info("biosemi64", 100.0)
    fwd = bf.make_fsaverage_forward(info, verbose="error")
    gain = cortex_normal(fwd)["sol"]["data"]
    t = np.arange(100) / 100.0
    rng = np.random.default_rng(0)
    data = np.outer(gain[:, 5000], np.sin(2 * np.pi * 8 * t)) * 20e-9
    data += rng.standard_normal(data.shape) * data.std() / 3
    evoked = mne.EvokedArray(data, info, verbose=False)
    evoked.set_eeg_reference(projection=True, verbose=False)
    cov = mne.make_ad_hoc_cov(info, verbose=False)
    model = bf.load_pretrained()
    ch_pos = np.array([ch["loc"][:3] for ch in info["chs"]])
    windows = data[None] - data.mean(0)
    model.predict_regions(windows, ch_pos)  # warm-up
    sloreta = MNEInverse("sLORETA")
    sloreta(evoked, fwd, cov)  # the operator, once
    results = dict(
        load_average=os.getloadavg(),
        cpus=len(os.sched_getaffinity(0)),
        network_s=_median_time(lambda: model.predict_regions(windows, ch_pos), 20),
        brainforge_s=_median_time(
            lambda: bf.apply_brainforge_inverse(evoked, fwd, model, cov), n
        ),
        sparse_bayes_s=_median_time(lambda: bf.apply_sparse_bayes(evoked, fwd, cov), n),
        sloreta_apply_s=_median_time(lambda: sloreta(evoked, fwd, cov), n),
    )
    print(json.dumps(results, indent=1))
    if out:
        with open(out, "w") as fid:
            json.dump(results, fid, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:2])
