"""Why the sparse Bayesian solve misses deep sources: the evidence of a deep start.

Run:  python benchmarks/bench_deep_evidence.py --out docs/benchmarks/deep/evidence.md
A hand check beside ``bench_deep.py`` (its test data, 64 channels): each case
is solved twice, from the flat start and from a start whose deep sources get
``--boost`` times the flat variance, and the evidence (marginal likelihood)
keeps one (``prior_mode='evidence'``, as BrainForge does with the network's
prior). A second pass estimates on the truth forward itself (no head mismatch,
the deep grid of the truth) with the flat start, to tell the model's
preference from the mismatch.
"""

import argparse
import os
from pathlib import Path

import mne_brainforge as bf
from mne_brainforge.evaluation.deep import make_deep_test_case, score_deep
from mne_brainforge.evaluation.testdata import make_truth_forward
from mne_brainforge.head import make_montage_info
from mne_brainforge.inverse import SparseBayes

os.environ.setdefault("MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT", "true")
HEAD = "jitter-4mm+skull-1/40"
CASES = [
    ("deep", "thalamus"),
    ("deep", "putamen"),
    ("deep", "hippocampus"),
    ("deep", "amygdala"),
    ("deep+cortex", "thalamus"),
    ("cortex", None),
]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=None)
parser.add_argument("--boost", type=float, default=100.0)
args = parser.parse_args()

info = make_montage_info("biosemi64", 250.0)
fwd = bf.make_fsaverage_forward(info, deep=True, verbose=False)
fwd_true = make_truth_forward(info, HEAD, deep=True, verbose=False)
solver, solver_true = SparseBayes(), SparseBayes()


def _cell(scores, won=None):
    found = scores["false_deep"] if scores["detected"] is None else scores["detected"]
    cell = f"{'yes' if found else 'no'} ({100 * scores['deep_share']:.0f} %)"
    return cell if won is None else f"{cell}, {won} start"


rows = []
for condition, structure in CASES:
    for snr in (0.0, 10.0, 20.0):
        for seed in (10, 11):
            case = make_deep_test_case(
                info,
                fwd_true,
                condition=condition,
                structure=structure or "thalamus",
                snr_db=snr,
                seed=seed,
            )
            prep = solver.prepare(case.evoked.info, fwd, case.noise_cov)
            prior = prep.depth_scale**2  # the flat start, in physical variances
            prior[prep.n_cortex :] *= args.boost
            flat = solver(case.evoked, fwd, case.noise_cov)
            chosen = solver(case.evoked, fwd, case.noise_cov, prior=prior)
            won = "flat" if (chosen.data == flat.data).all() else "deep"
            exact = solver_true(case.evoked, fwd_true, case.noise_cov)
            rows.append(
                f"| {condition} | {structure or '-'} | {snr:g} | {seed} "
                f"| {_cell(score_deep(flat, fwd['src'], case))} "
                f"| {_cell(score_deep(chosen, fwd['src'], case), won)} "
                f"| {_cell(score_deep(exact, fwd_true['src'], case))} |"
            )
            print(rows[-1], flush=True)

text = "\n".join(
    [
        "### Sparse Bayes on deep sources: flat start, deep start, exact forward",
        "",
        f"`python benchmarks/bench_deep_evidence.py --boost {args.boost:g}`; 64 "
        f"channels, truth head {HEAD}. Each cell: the true deep source detected (at "
        "half of the map's maximum; with only the cortex active: a false deep "
        "detection) and the share of the map's energy on deep sources. Deep start: "
        f"deep variances x{args.boost:g}, the evidence chooses between it and the "
        "flat start. Exact forward: the truth head's own forward and deep grid.",
        "",
        "| condition | structure | SNR (dB) | seed | flat start | evidence: deep "
        "vs flat start | exact forward, flat start |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
)
if args.out is not None:
    args.out.write_text(text)
print(text)
