"""Classical and sparse inverses on the independent test data, through a wrong head.

The data come from :mod:`mne_brainforge.evaluation.testdata` (random-vertex
Gaussian discs of 10 mm radius, ERP waveforms, half white and half brain noise,
10 dB) made with a truth head the methods never get: electrodes jittered by
4 mm RMS and a skull of 1/40 of the brain's conductivity (0.0083 vs 0.33 S/m).
Every method gets the nominal 64-channel forward (skull 0.006, brain 0.3 S/m)
and the noise covariance of the test case, all with cortex-normal dipoles
(``loose=0``).

Run::

    .venv/bin/python benchmarks/bench_testdata.py --n-cases 10
"""

import argparse
import json
import time

import numpy as np

from mne_brainforge.evaluation.testdata import iter_test_cases, make_truth_forward
from mne_brainforge.head import make_fsaverage_forward, make_montage_info, source_graph
from mne_brainforge.inverse.classical import make_method
from mne_brainforge.metrics import (
    auc,
    average_precision,
    earth_movers_distance,
    localization_error,
    peak_localization_error,
    spatial_dispersion,
)

METHODS = {
    "sLORETA": dict(loose=0.0),
    "eLORETA": dict(loose=0.0),
    "MxNE": dict(alpha=30.0, n_mxne_iter=5),
    "gamma-MAP": dict(alpha=1.0),
}
COLUMNS = ("LE", "SD", "AUC", "EMD", "AP", "peak LE", "s/call")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n-cases", type=int, default=10, help="cases per source count")
parser.add_argument("--head", default="jitter-4mm+skull-1/40", help="truth head")
parser.add_argument("--methods", nargs="+", default=list(METHODS))
parser.add_argument("--json", help="write the per-case records here")
args = parser.parse_args()

info = make_montage_info(64)
fwd = make_fsaverage_forward(info, verbose="error")
fwd_true = make_truth_forward(info, args.head, seed=0, verbose="error")
src = fwd["src"]
graph = source_graph(src, verbose=False)
methods = {name: make_method(name, **METHODS[name]) for name in args.methods}
grid = {"n_sources": [1, 2]}
records = []
for _, case in iter_test_cases(
    info,
    fwd_true,
    grid,
    n_cases=args.n_cases,
    seed=0,
    snr_db=10.0,
    extent_mm=10.0,
    noise={"white": 0.5, "brain": 0.5},
    head=args.head,
    graph=graph,
):
    for name, method in methods.items():
        t0 = time.perf_counter()
        stc = method(case.evoked, fwd, case.noise_cov)
        seconds = time.perf_counter() - t0
        truth = case.truth
        records.append(
            {
                "method": name,
                "n_sources": case.n_sources,
                "LE": localization_error(stc, truth, src, graph),
                "SD": spatial_dispersion(stc, truth, src),
                "AUC": auc(stc, truth, src),
                "EMD": earth_movers_distance(stc, truth, src),
                "AP": average_precision(stc, truth),
                "peak LE": peak_localization_error(stc, truth, src, graph),
                "s/call": seconds,
            }
        )
        print(records[-1], flush=True)

if args.json:
    with open(args.json, "w") as fid:
        json.dump(records, fid, indent=1)
print(
    f"\n64 channels, 10 dB, 10 mm discs, truth head {args.head!r}, "
    f"{args.n_cases} cases per row; median (LE, SD, EMD, peak LE in mm)\n"
)
print("| sources | method | " + " | ".join(COLUMNS) + " |")
print("|---|---|" + "---|" * len(COLUMNS))
for n_sources in grid["n_sources"]:
    for name in methods:
        rows = [
            r for r in records if r["method"] == name and r["n_sources"] == n_sources
        ]
        cells = [f"{np.nanmedian([r[c] for r in rows]):.3g}" for c in COLUMNS]
        print(f"| {n_sources} | {name} | " + " | ".join(cells) + " |")
