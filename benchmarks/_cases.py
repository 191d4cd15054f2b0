"""The benchmark cases the ablation scripts share (``bench_ablations``, ``bench_unrolled``,
``bench_prior_map``)."""

import shlex
import sys
from pathlib import Path

from mne_brainforge.evaluation.benchmark import run_benchmark


def run_ablation_cases(methods, out_dir, montage="biosemi64"):
    """Benchmark v2's ``default`` scenario on one cap: 0/5/10/20 dB x 1/2/3/5 sources
    x 2 trials (32 cases), the truth heads taking turns; resumable in ``out_dir``.

    The report records the command line the script was run with.
    """
    script = Path(sys.argv[0])
    command = " ".join(
        ["python", f"benchmarks/{script.name}", *map(shlex.quote, sys.argv[1:])]
    )
    return run_benchmark(
        "default",
        methods=methods,
        montages=[montage],
        out_dir=out_dir,
        figures=False,
        command=command,
        verbose="info",
    )
