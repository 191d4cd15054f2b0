"""Time and memory of BrainForge on 10 minutes of 64-channel raw EEG (2-core CPU).

Run:  MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT=true python benchmarks/bench_raw.py \\
          docs/benchmarks/raw.json

A simulated recording (BioSemi 64, 250 Hz, 10 minutes: an 8 Hz source and a
spiking source on the template's cortex in white sensor noise, average
reference) through :func:`~mne_brainforge.apply_brainforge_inverse_raw` (the
network on every 1 s window, one sparse Bayesian solve of the whole span's
covariance), with the pretrained model. Reports the wall time of the call and
the peak resident memory it added; the estimate comes back in MNE's delayed
``(kernel, data)`` form, and the time to form one minute of it (``kernel @
data``) is reported beside. Target (issue 14): <= 60 s, bounded memory.
"""

import json
import os
import resource
import sys
import time

import mne
import numpy as np

import mne_brainforge as bf
from mne_brainforge.head import cortex_normal, make_montage_info

SFREQ, MINUTES = 250.0, 10


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def main(out=None):
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
    print(json.dumps(results, indent=1))
    if out:
        with open(out, "w") as fid:
            json.dump(results, fid, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:2])
