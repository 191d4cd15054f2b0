"""The dictionary of the sparse Bayesian solve chosen by the evidence.

Run:  MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT=true python benchmarks/bench_dictionary.py \\
          --out-dir docs/benchmarks/dictionary [--montage biosemi16] [--model prior.pt]
Benchmark v2's ``default`` scenario on one cap (32 cases, as
``bench_ablations.py``): single dipoles (``patch_widths=(0,)``, the default),
the patch dictionary (:data:`~mne_brainforge.inverse.PATCH_WIDTHS`) and
``patch_widths="auto"`` (both solved apart, the larger evidence kept), for the
flat sparse Bayesian solve and for BrainForge (the network's prior and the flat
start on each dictionary). Resumable in the output folder.
"""

import argparse
import os
from pathlib import Path

from _cases import run_ablation_cases

from mne_brainforge.evaluation.methods import BrainForgeMethod
from mne_brainforge.inverse import PATCH_WIDTHS, SparseBayes

os.environ.setdefault("MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT", "true")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out-dir", type=Path, default=Path("docs/benchmarks/dictionary"))
parser.add_argument("--model", help="Network file (default: the pretrained model)")
parser.add_argument("--montage", default="biosemi64", help="The cap of the cases.")
args = parser.parse_args()

DICTIONARIES = {"": (0,), " (patches)": PATCH_WIDTHS, " (auto)": "auto"}
methods = {
    **{
        f"BrainForge{label}": BrainForgeMethod(args.model, patch_widths=widths)
        for label, widths in DICTIONARIES.items()
    },
    **{
        f"sparse Bayes{label}": SparseBayes(patch_widths=widths)
        for label, widths in DICTIONARIES.items()
    },
}
run_ablation_cases(methods, args.out_dir, montage=args.montage)
