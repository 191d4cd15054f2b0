"""Deep-source benchmark: every method on the mixed (cortex + deep) template.

Run:  python benchmarks/bench_deep.py --out-dir docs/benchmarks/deep
Test data of :mod:`mne_brainforge.evaluation.deep` (truth head: 4 mm electrode
jitter and a 1/40 skull, deep truth sources on their own grid, 4.3 mm off the
estimates'); per structure detection rate and localization error, false deep
detections, by SNR and channel count. Resumable (``--checkpoint``). Writes
``deep.md`` (the tables), ``records.json``, ``deep_structures.png`` (where the
structures are on the template) and ``deep_example.png`` (one thalamic +
cortical case, every method).
"""

import argparse
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import mne_brainforge as bf  # noqa: E402
from mne_brainforge.evaluation.deep import (  # noqa: E402
    deep_cells,
    deep_report,
    make_deep_test_case,
    run_deep_benchmark,
)
from mne_brainforge.evaluation.methods import make_methods  # noqa: E402
from mne_brainforge.evaluation.testdata import make_truth_forward  # noqa: E402
from mne_brainforge.head import make_montage_info  # noqa: E402
from mne_brainforge.inverse.classical import GammaMap  # noqa: E402

os.environ.setdefault("MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT", "true")
HEAD = "jitter-4mm+skull-1/40"
SLOW = ("gamma-MAP",)  # only on the 64-channel cases

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out-dir", type=Path, default=Path("docs/benchmarks/deep"))
parser.add_argument("--checkpoint", type=Path, default=None)
parser.add_argument("--quick", action="store_true", help="One case per condition.")
args = parser.parse_args()
args.out_dir.mkdir(parents=True, exist_ok=True)

methods = make_methods(
    ["BrainForge", "sparse Bayes", "sLORETA", "dSPM", "eLORETA", "MNE", "LCMV"]
)
# MNE's gamma-MAP takes about a second per iteration on the 20805 sources
methods["gamma-MAP"] = GammaMap(maxit=30)
cells = deep_cells()
if args.quick:
    cells = [c for c in cells if c[3] == "thalamus" and c[4] == -1][::3]
records = run_deep_benchmark(
    methods,
    cells=cells,
    head=HEAD,
    checkpoint=args.checkpoint,
    skip=lambda name, cell: name in SLOW and cell[1] != "biosemi64",
    verbose="info",
)
(args.out_dir / "records.json").write_text(json.dumps(records, indent=1))
(args.out_dir / "deep.md").write_text(deep_report(records))
print(deep_report(records))

# the figures: where the structures are, and one thalamic + cortical case
info = make_montage_info("biosemi64", 250.0)
fwd = bf.make_fsaverage_forward(info, deep=True, verbose=False)
fig = bf.viz.plot_glass_brain(fwd["src"])
fig.suptitle("Deep structures of the template (fsaverage, 5 mm grid)")
fig.savefig(args.out_dir / "deep_structures.png", dpi=110)
fwd_true = make_truth_forward(info, HEAD, deep=True, verbose=False)
case = make_deep_test_case(
    info, fwd_true, condition="deep+cortex", structure="thalamus", seed=3
)
truth = [case.deep_position, *case.cortex_positions]
fig, axes = plt.subplots(
    len(methods), 3, figsize=(11, 3.2 * len(methods)), layout="constrained"
)
for row, (name, method) in zip(axes, methods.items()):
    stc = method(case.evoked, fwd, case.noise_cov)
    bf.viz.plot_glass_brain(fwd["src"], stc, truth=truth, title=name, axes=row)
fig.suptitle("Left thalamus + a cortical disc, 64 channels, 10 dB (x: true sources)")
fig.savefig(args.out_dir / "deep_example.png", dpi=80)
