"""Speed of the BrainForge estimate (network prior + sparse Bayesian solve) on the CPU.

Run:  MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT=true python benchmarks/bench_estimator.py \\
          docs/benchmarks/estimator.json
      MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT=true python benchmarks/bench_estimator.py \\
          --raw docs/benchmarks/raw.json

Per 1 s window of 64 channels at 100 Hz (the network's rate): the network alone
(``predict_regions``), the whole BrainForge estimate (prior + two solves, evidence),
the flat sparse Bayesian solve alone and sLORETA's ``apply_inverse`` (after its
operator is made). Timings of one run are comparable with each other (same load);
the machine's load average is recorded.

``--raw``: a simulated recording (BioSemi 64, 250 Hz, 10 minutes: an 8 Hz
source and a spiking source on the template's cortex in white sensor noise,
average reference) through :func:`~mne_brainforge.apply_brainforge_inverse_raw`
(the network on every 1 s window, one sparse Bayesian solve of the whole span's
covariance): the wall time of the call and the peak resident memory it added;
the estimate comes back in MNE's delayed ``(kernel, data)`` form, and the time
to form one minute of it (``kernel @ data``) is reported beside. Target (issue
14): <= 60 s, bounded memory.
"""

import argparse
import json
import os
import resource
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


def window_main(n=5):
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
    return results


SFREQ, MINUTES = 250.0, 10


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def raw_main():
    info = make_montage_info("biosemi64", SFREQ)
    fwd = bf.make_fsaverage_forward(info, verbose="error")
    gain = cortex_normal(fwd)["sol"]["data"]
    n = int(MINUTES * 60 * SFREQ)
    t = np.arange(n) / SFREQ
    rng = np.random.default_rng(0)
    spikes = np.zeros(n)
    spikes[rng.choice(n, 600, replace=False)] = 1.0
    spikes = np.convolve(spikes, np.hanning(25), mode="same")
    data = np.outer(gain[:, 5000], np.sin(2 * np.pi * 8 * t)) * 10e-9
    data += np.outer(gain[:, 15000], spikes) * 40e-9
    data += rng.standard_normal(data.shape) * data.std() / 2
    raw = mne.io.RawArray(data, info, verbose=False)
    raw.set_eeg_reference(projection=True, verbose=False)
    cov = mne.make_ad_hoc_cov(info, verbose=False)
    model = bf.load_pretrained()
    short = raw.copy().crop(0, 10)
    bf.apply_brainforge_inverse_raw(short, fwd, model, cov, verbose=False)  # warm-up
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    stc = bf.apply_brainforge_inverse_raw(raw, fwd, model, cov, verbose=False)
    call_s = time.perf_counter() - t0
    rss_after = _peak_rss_mb()
    kernel, sens = stc._kernel, stc._sens_data
    minute = int(60 * SFREQ)
    t0 = time.perf_counter()
    kernel @ sens[:, :minute]
    form_minute_s = time.perf_counter() - t0
    results = dict(
        setting=f"{MINUTES} min, 64 channels, {SFREQ:g} Hz, pretrained model",
        load_average=os.getloadavg(),
        cpus=len(os.sched_getaffinity(0)),
        raw_data_mb=raw.get_data().nbytes / 1e6,
        call_s=call_s,
        peak_rss_before_mb=rss_before,
        peak_rss_after_mb=rss_after,
        kernel_shape=list(kernel.shape),
        form_one_minute_of_sources_s=form_minute_s,
        one_minute_of_sources_gb=kernel.shape[0] * minute * 8 / 1e9,
    )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="JSON file of the results")
    parser.add_argument("--raw", action="store_true", help="10 minutes of raw EEG")
    args = parser.parse_args()
    results = raw_main() if args.raw else window_main()
    print(json.dumps(results, indent=1))
    if args.out:
        with open(args.out, "w") as fid:
            json.dump(results, fid, indent=1)
