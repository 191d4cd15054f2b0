"""Unrolled vs frozen prior: one fine-tuning budget, two objectives, one benchmark.

Run:  python benchmarks/bench_unrolled.py --steps 600 --out-dir docs/benchmarks/unrolled

1. From the released model, fine-tune twice on the same windows (same seeds,
   batch size, learning rate and steps) with the two training objectives of
   ``train_prior``: ``'prior'`` (region energy shares: the prior trained on its
   own, then frozen for the solve) and ``'unrolled'`` (through ``--n-iter``
   differentiable sparse Bayesian iterations, a loss on the vertex-level
   estimate). Resumable: the training states and models are in ``--work-dir``.
2. Benchmark v2's cases on one cap (``--montage``, default BioSemi 64; as
   ``bench_ablations.py``: 0/5/10/20 dB x 1/2/3/5 sources x 2 trials, truth
   heads the methods never get) with the flat sparse Bayesian solve, the released model and both fine-tuned models, each
   with the estimator's 50 iterations and with ``--n-iter`` (what the unrolled
   model was trained for), with the evidence check (the default) and without
   it (the prior alone). Resumable (``checkpoint.json`` in ``--out-dir``).
"""

import argparse
import os
import time
from pathlib import Path

from _cases import run_ablation_cases

from mne_brainforge.evaluation.methods import BrainForgeMethod
from mne_brainforge.head import make_head_model_family
from mne_brainforge.inverse import SparseBayes
from mne_brainforge.nn import BrainForgeModel
from mne_brainforge.simulation import BatchedEEGGenerator, fetch_waveform_bank
from mne_brainforge.training import train_prior
from mne_brainforge.weights import load_pretrained

os.environ.setdefault("MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT", "true")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=600)
parser.add_argument("--batch-size", type=int, default=8)
parser.add_argument("--n-iter", type=int, default=5)
parser.add_argument("--lr", type=float, default=3e-4)
parser.add_argument("--seed", type=int, default=11)
parser.add_argument("--work-dir", type=Path, default=Path("runs/unrolled"))
parser.add_argument("--out-dir", type=Path, default=Path("docs/benchmarks/unrolled"))
parser.add_argument(
    "--montage", default="biosemi64", help="The cap of the benchmark cases."
)
parser.add_argument(
    "--train-only", action="store_true", help="Stop after the fine-tuning."
)
args = parser.parse_args()
args.work_dir.mkdir(parents=True, exist_ok=True)

released = load_pretrained()
generator = BatchedEEGGenerator(make_head_model_family(), fetch_waveform_bank())
models = {}
for objective in ("prior", "unrolled"):
    out = args.work_dir / f"{objective}.pt"
    if not out.is_file():
        t0 = time.perf_counter()
        model = train_prior(
            generator,
            init=released,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            objective=objective,
            n_iter=args.n_iter,
            checkpoint=args.work_dir / f"{objective}-state.pt",
            verbose="info",
        )
        model.save(out, overwrite=True)
        print(f"{objective}: {time.perf_counter() - t0:.0f} s of fine-tuning")
    models[objective] = BrainForgeModel.load(out)
if args.train_only:
    raise SystemExit(0)

k = args.n_iter
methods = {
    "flat prior (sparse Bayes)": SparseBayes(),
    f"flat prior, {k} it.": SparseBayes(n_iter=k),
    "released prior": BrainForgeMethod(released),
    "frozen prior (fine-tuned)": BrainForgeMethod(models["prior"]),
    f"frozen prior, {k} it.": BrainForgeMethod(models["prior"], n_iter=k),
    "unrolled prior": BrainForgeMethod(models["unrolled"]),
    f"unrolled prior, {k} it.": BrainForgeMethod(models["unrolled"], n_iter=k),
    # without the evidence check, which mostly keeps the flat start here: the
    # prior's own effect, and the path the unrolled objective trained
    "frozen, prior only": BrainForgeMethod(models["prior"], prior_mode="prior"),
    f"frozen, prior only, {k} it.": BrainForgeMethod(
        models["prior"], prior_mode="prior", n_iter=k
    ),
    "unrolled, prior only": BrainForgeMethod(models["unrolled"], prior_mode="prior"),
    f"unrolled, prior only, {k} it.": BrainForgeMethod(
        models["unrolled"], prior_mode="prior", n_iter=k
    ),
}
run_ablation_cases(methods, args.out_dir, montage=args.montage)
