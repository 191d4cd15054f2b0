"""The README's compact benchmark tables from a benchmark's ``results.json``.

Run:  python benchmarks/summary_table.py docs/benchmarks/fsaverage-brainforge/results.json
Prints two markdown tables of mean localization error (mm) / spatial dispersion
(mm) / AUC: by number of sources (1, 2-3) and SNR, and by montage.
"""

import argparse
import json
from pathlib import Path

import numpy as np

METHODS = ("BrainForge", "sLORETA", "eLORETA", "dSPM", "MNE")
METRICS = ("localization_error", "spatial_dispersion", "auc")


def _cell(records):
    means = [np.nanmean([r[m] for r in records]) for m in METRICS]
    return "{:.0f} / {:.0f} / {:.2f}".format(*means)


def _row(label, records):
    return (
        f"| {label} | "
        + " | ".join(_cell([r for r in records if r["method"] == m]) for m in METHODS)
        + " |"
    )


def tables(records):
    """Markdown lines of the two tables."""
    methods = [m for m in METHODS if any(r["method"] == m for r in records)]
    if methods != list(METHODS):
        raise ValueError(f"The results lack {sorted(set(METHODS) - set(methods))}.")
    lines = [
        "| sources | SNR dB | " + " | ".join(METHODS) + " |",
        "|---" * (len(METHODS) + 2) + "|",
    ]
    for label, n_src in (("1", (1,)), ("2-3", (2, 3))):
        for snr in sorted({r["snr_db"] for r in records}):
            sel = [r for r in records if r["n_sources"] in n_src and r["snr_db"] == snr]
            lines.append(_row(f"{label} | {snr:g}", sel))
    lines += [
        "",
        "| channels (all SNRs, 1-3 sources) | " + " | ".join(METHODS) + " |",
        "|---" * (len(METHODS) + 1) + "|",
    ]
    for n_ch in sorted({r["n_channels"] for r in records}):
        lines.append(_row(str(n_ch), [r for r in records if r["n_channels"] == n_ch]))
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "results", type=Path, help="results.json of `brainforge benchmark`"
    )
    print("\n".join(tables(json.loads(parser.parse_args().results.read_text()))))
