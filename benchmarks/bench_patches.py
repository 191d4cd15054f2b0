"""Sparse Bayes with and without the geodesic patch dictionary, on benchmark v2 data.

Data: the independent test-data generator (``mne_brainforge.evaluation``),
biosemi64, truth heads jitter 4 mm + skull 1/40, skull 1/80 and a 5 mm
co-registration shift (the methods get the nominal template), 5 and 20 dB,
1-3 sources (dipoles, discs, elongated patches of 3-30 mm), ``n_trials`` cases
per cell, seed 1. Methods: sparse Bayes (Champagne) on single dipoles, on each
patch dictionary given, and sLORETA. Prints every metric of the benchmark per
number of sources.

Run: ``python benchmarks/bench_patches.py [n_trials] [widths ...]``, e.g.
``python benchmarks/bench_patches.py 2 0,5,10 5,10`` (12 cases, about 10 min
on 2 cores).
"""

import sys
import time

from mne_brainforge.evaluation.runner import (
    METRICS,
    Scenario,
    run_evaluation,
    summarize,
)
from mne_brainforge.inverse import SparseBayes, make_method

n_trials = int(sys.argv[1]) if len(sys.argv) > 1 else 2
dictionaries = [tuple(float(w) for w in a.split(",")) for a in sys.argv[2:]] or [
    (5, 10)
]
scenario = Scenario(
    "patches",
    montages=("biosemi64",),
    heads=("jitter-4mm+skull-1/40", "skull-1/80", "coreg-5mm"),
    snrs=(5.0, 20.0),
    n_sources=(1, 2, 3),
    n_trials=n_trials,
)
methods = {"sparse Bayes": SparseBayes()}
for widths in dictionaries:
    methods[f"sparse Bayes {widths} mm"] = SparseBayes(patch_widths=widths)
methods["sLORETA"] = make_method("sLORETA")
start = time.perf_counter()
records, _ = run_evaluation(scenario, methods, seed=1, keep_examples=False)
print(f"{len(records)} records in {time.perf_counter() - start:.0f} s")
for metric in (*METRICS, "time_s"):
    table = summarize(records, by=lambda r: r["n_sources"], metric=metric)
    print(f"\n{metric} (mean per number of sources)")
    for group in sorted(table):
        cells = "  ".join(f"{m}: {v[0]:.3g}" for m, v in table[group].items())
        print(f"  {group}: {cells}")
