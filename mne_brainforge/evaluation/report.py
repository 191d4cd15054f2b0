"""Reports of an evaluation run: JSON, markdown tables that state losses, PNGs."""

import json
import platform
from pathlib import Path

import numpy as np

from ..utils import atomic_write_text, fill_doc
from .runner import METRICS, SHORT, summarize

#: Metrics in the compact cells of the report's tables.
CELL_METRICS = ("localization_error", "spatial_dispersion", "auc")


def source_group(n_sources):
    """The report's groups of source counts: ``'1'``, ``'2-3'`` or ``'4-5'``."""
    return "1" if n_sources == 1 else "2-3" if n_sources <= 3 else "4-5"


def _cell(tables, group, method, metrics):
    parts = []
    for name in metrics:
        mean, _ = tables[name].get(group, {}).get(method, (np.nan, 0))
        parts.append("-" if not np.isfinite(mean) else METRICS[name][1].format(mean))
    return " / ".join(parts)


@fill_doc
def markdown_table(records, by, label, methods, metrics=CELL_METRICS):
    """A markdown table: one row per group, one ``LE / SD / AUC`` cell per method.

    Parameters
    ----------
    %(records)s
    by : callable
        ``by(record) -> group`` (rows, sorted).
    label : str
        Header of the group column.
    methods : list of str
        Columns, in order.
    metrics : sequence of str
        The metrics of a cell (keys of :data:`METRICS`); the first one decides
        the bold cell.

    Returns
    -------
    text : str
        The table; the best mean of the first metric of each row in bold.
    """
    tables = {name: summarize(records, by, name) for name in metrics}
    groups = sorted(tables[metrics[0]], key=_sort_key)
    lines = [
        f"| {label} | " + " | ".join(methods) + " |",
        "|---" * (len(methods) + label.count("|") + 1) + "|",
    ]
    pick = min if METRICS[metrics[0]][0] else max
    for group in groups:
        first = tables[metrics[0]][group]
        means = [first[m][0] for m in methods if m in first]
        best = pick((v for v in means if np.isfinite(v)), default=np.nan)
        cells = []
        for method in methods:
            cell = _cell(tables, group, method, metrics)
            if method in first and first[method][0] == best:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"| {_label(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _sort_key(group):
    return tuple(str(g).zfill(8) for g in np.atleast_1d(group))


def _label(group):
    if isinstance(group, tuple):
        return " | ".join(_label(g) for g in group)
    return f"{group:g}" if isinstance(group, float) else str(group)


@fill_doc
def verdicts(records, method, by, label):
    """Plain sentences: where ``method`` has the lowest mean LE, and where it does not.

    Parameters
    ----------
    %(records)s
    method : str
        The method judged (e.g. ``'BrainForge'``).
    by : callable
        Group key of the cells.
    label : str
        What a group is (e.g. ``'sources | SNR dB'``).

    Returns
    -------
    lines : list of str
        One markdown bullet per cell.
    """
    table = summarize(records, by, "localization_error")
    lines = []
    for group in sorted(table, key=_sort_key):
        row = table[group]
        if method not in row:
            continue
        others = {m: v[0] for m, v in row.items() if m != method and np.isfinite(v[0])}
        if not others:
            continue
        best = min(others, key=others.get)
        mine = row[method][0]
        if mine <= others[best]:
            lines.append(
                f"- {label} {_label(group)}: {method} wins, LE {mine:.1f} mm vs "
                f"{others[best]:.1f} mm for the next best ({best})."
            )
        else:
            lines.append(
                f"- {label} {_label(group)}: **{method} loses**, LE {mine:.1f} mm vs "
                f"{others[best]:.1f} mm for {best}."
            )
    return lines


def timing_table(records, methods):
    """Markdown table of the mean and median time per call of each method."""
    lines = ["| method | mean s/call | median s/call |", "|---|---|---|"]
    for method in methods:
        times = [r["time_s"] for r in records if r["method"] == method]
        lines.append(f"| {method} | {np.mean(times):.3f} | {np.median(times):.3f} |")
    return "\n".join(lines)


def plot_by_snr(records, fname, metric="localization_error"):
    """PNG: a metric against SNR, one line per method, one panel per source group."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    groups = sorted({source_group(r["n_sources"]) for r in records})
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.6))
    for ax, group in zip(np.atleast_1d(axes), groups):
        subset = [r for r in records if source_group(r["n_sources"]) == group]
        table = summarize(subset, lambda r: r["snr_db"], metric)
        methods = sorted({r["method"] for r in subset})
        snrs = sorted(table)
        for method in methods:
            ax.plot(snrs, [table[s][method][0] for s in snrs], "o-", label=method)
        ax.set(title=f"{group} source(s)", xlabel="SNR (dB)", ylabel=SHORT[metric])
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(fname, dpi=100)
    plt.close(fig)


@fill_doc
def write_results(records, out_dir, *, extra=None, command=None):
    """Write ``results.json`` (every record, the command and the machine).

    Parameters
    ----------
    %(records)s
    out_dir : path-like
        Output folder (created).
    extra : dict | None
        More JSON-able results (e.g. the real-data scores).
    command : str | None
        The command that made them.

    Returns
    -------
    fname : Path
        The JSON file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blob = dict(
        command=command,
        machine=f"{platform.machine()}, {_n_cpus()} CPUs, Python {platform.python_version()}",
        records=records,
        **(extra or {}),
    )
    fname = out_dir / "results.json"
    atomic_write_text(fname, json.dumps(blob, indent=1, default=_jsonable) + "\n")
    return fname


def _n_cpus():
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
