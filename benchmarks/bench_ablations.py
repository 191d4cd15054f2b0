"""Ablations of the BrainForge estimate on benchmark v2's cases of one cap.

Run:  MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT=true python benchmarks/bench_ablations.py \\
          --out-dir docs/benchmarks/ablations [--model prior.pt] [--montage biosemi16]
The ``default`` scenario of ``brainforge benchmark`` restricted to one cap
(``--montage``, default BioSemi 64; 0/5/10/20 dB x 1/2/3/5 sources x 2 trials,
eight truth heads taking turns: 32 cases), the pretrained network (or
``--model``), and the estimate's choices taken apart: the learned prior with the
evidence check (the default), the learned prior alone (no check), the
evidence-weighted mixture, the flat prior (the plain sparse Bayesian solve), and
fewer iterations (5 also from the flat prior). Resumable (``checkpoint.json`` in
the output folder). A prior trained through an unrolled solve against the frozen
prior: ``bench_unrolled.py``.
"""

import argparse
import os
from pathlib import Path

from _cases import run_ablation_cases

from mne_brainforge.evaluation.methods import BrainForgeMethod
from mne_brainforge.inverse import SparseBayes

os.environ.setdefault("MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT", "true")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out-dir", type=Path, default=Path("docs/benchmarks/ablations"))
parser.add_argument("--model", help="Network file (default: the pretrained model)")
parser.add_argument(
    "--montage", default="biosemi64", help="The cap of the benchmark cases."
)
args = parser.parse_args()

methods = {
    "BrainForge (prior + evidence, 50 it.)": BrainForgeMethod(args.model),
    "learned prior only": BrainForgeMethod(args.model, prior_mode="prior"),
    "evidence-weighted": BrainForgeMethod(args.model, prior_mode="weight"),
    "flat prior (sparse Bayes)": SparseBayes(),
    "prior + evidence, 20 it.": BrainForgeMethod(args.model, n_iter=20),
    "prior + evidence, 5 it.": BrainForgeMethod(args.model, n_iter=5),
    "flat prior, 5 it.": SparseBayes(n_iter=5),
}
run_ablation_cases(methods, args.out_dir, montage=args.montage)
