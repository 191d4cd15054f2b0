"""Is the network's prior informative on independent data? The prior as a map, scored.

Run:  python benchmarks/bench_prior_map.py --out-dir docs/benchmarks/prior-map \\
          [--model NAME=FILE ...]

Benchmark v2's cases on one cap (``--montage``, default BioSemi 64; as
``bench_ablations.py``: 32 cases, truth heads the methods never get), each network's prior over the sources (what the sparse
Bayesian solve starts from: region energies spread on the mesh, mean 1) returned
as a map (its square root, constant over time) and scored like an estimate: AUC
and average precision say whether the prior ranks the true sources above the
others, the classic LE where its largest peaks are. Beside them, the flat sparse
Bayesian solve and sLORETA. A prior no better than chance (AUC 0.5) cannot help
the solve, whatever the solve does with it.
"""

import argparse
import os
from pathlib import Path

import mne
import numpy as np
from _cases import run_ablation_cases

from mne_brainforge.inverse import SparseBayes, make_method
from mne_brainforge.inverse._core import _load_model, _network_prior, _prepare

os.environ.setdefault("MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT", "true")


class PriorMap:
    """The network's prior over the cortex as a (time-constant) source estimate."""

    def __init__(self, model):
        self.model = _load_model(model)

    def __call__(self, evoked, forward, noise_cov):
        with mne.utils.use_log_level("warning"):
            return self._map(evoked, forward, noise_cov)

    def _map(self, evoked, forward, noise_cov):
        setup = _prepare(
            evoked.info,
            forward,
            self.model,
            noise_cov,
            None,
            scan=lambda picks: [evoked.data[picks]],
            n_samples=len(evoked.times),
            depth=0.8,
            patch_widths=(0,),
        )
        data = evoked.data[setup.picks]
        prior = _network_prior(setup, lambda a, b: data[:, a:b], data.shape[1])
        amplitude = np.sqrt(prior)[:, None] * np.ones(len(evoked.times))
        src = forward["src"]
        return mne.SourceEstimate(
            amplitude,
            [s["vertno"] for s in src],
            tmin=evoked.times[0],
            tstep=1 / evoked.info["sfreq"],
            subject=src._subject,
        )


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out-dir", type=Path, default=Path("docs/benchmarks/prior-map"))
parser.add_argument(
    "--montage", default="biosemi64", help="The cap of the benchmark cases."
)
parser.add_argument(
    "--model",
    action="append",
    default=[],
    metavar="NAME=FILE",
    help="A network to score (repeatable); the released model is always scored.",
)
args = parser.parse_args()

methods = {"released prior (map)": PriorMap(None)}
for item in args.model:
    name, _, path = item.partition("=")
    methods[f"{name} (map)"] = PriorMap(path)
methods["flat prior (sparse Bayes)"] = SparseBayes()
methods["sLORETA"] = make_method("sLORETA")
run_ablation_cases(methods, args.out_dir, montage=args.montage)
