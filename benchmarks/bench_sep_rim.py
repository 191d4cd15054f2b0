"""The real SEP without the cap's lower rim: every method, several cut heights.

The template's closed BEM has no neck, so its gain is least accurate for the
electrodes low on the head (face, ears, neck), which a 256-channel cap has many
of. Each run leaves out the electrodes below a height (z in the template's head
frame) and scores every benchmark method at the N20 and P25 as the demo does
(:func:`mne_brainforge.evaluation.demo.run_sep`; the latencies come from the
whole cap).

Run:  MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT=true python benchmarks/bench_sep_rim.py \\
          --out-dir docs/benchmarks/sep-rim
"""

import argparse
import json
from pathlib import Path

from mne_brainforge.evaluation.demo import run_sep
from mne_brainforge.evaluation.methods import make_methods

HEIGHTS_MM = (None, 0, 30, 50)


def main(out_dir, heights):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = make_methods()
    results, lines = {}, ["# The real SEP without the cap's lower rim", ""]
    lines += [f"Command: `python benchmarks/bench_sep_rim.py --out-dir {out_dir}`", ""]
    for height in heights:
        key = "all" if height is None else f"z >= {height} mm"
        min_height = None if height is None else height / 1e3
        results[key], section = run_sep(methods, min_height=min_height)
        section[0] = section[0].replace("## ", f"## {key}: ", 1)
        lines += section
        (out_dir / "results.json").write_text(json.dumps(results, indent=1))
        (out_dir / "results.md").write_text("\n".join(lines) + "\n")
        print("\n".join(section), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default="docs/benchmarks/sep-rim")
    parser.add_argument(
        "--heights",
        nargs="+",
        type=float,
        default=None,
        help="Cut heights (mm); default: all electrodes, then 0, 30, 50 mm.",
    )
    args = parser.parse_args()
    main(args.out_dir, HEIGHTS_MM if args.heights is None else args.heights)
