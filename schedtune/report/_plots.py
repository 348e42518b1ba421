"""Pictures of a job beside report.md, drawn from summary.json's own numbers.

- search_history.png: per target, every trial's time, the best so far, IREE's default
  (the baseline trial) and the winner's in-model time when it was confirmed;
- dispatch_times.png: per target, IREE's default vs the best config;
- flag_candidates.png: the model-level flag sets, median end-to-end time and spread.

`write_plots` returns, per file, the series it drew (kept in summary.json under `plots`).
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

MAX_PANELS = 12  # targets drawn in the search history, hottest first


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _label(row: dict, several: bool) -> str:
    return f"{row['build']}: {row['label']}" if several else row["label"]


def write_plots(folder: pathlib.Path, summary: dict[str, Any]) -> dict[str, Any]:
    plt = _pyplot()
    drawn: dict[str, Any] = {}
    rows = [r for r in summary["dispatches"] if r.get("timeline_ms")]
    several = len({r["build"] for r in summary["dispatches"]}) > 1
    if rows:
        rows = sorted(rows, key=lambda r: -r["share"])[:MAX_PANELS]
        cols = min(3, len(rows))
        lines = math.ceil(len(rows) / cols)
        fig, axes = plt.subplots(lines, cols, figsize=(5 * cols, 3.2 * lines), squeeze=False)
        series = {}
        for ax, row in zip(axes.flat, rows):
            times = row["timeline_ms"]
            best, best_so_far = math.inf, []
            for t in times:
                if t is not None:
                    best = min(best, t)
                best_so_far.append(best if best < math.inf else None)
            ok = [(i, t) for i, t in enumerate(times) if t is not None]
            if ok:
                ax.scatter([i for i, _ in ok], [t for _, t in ok], s=10, color="tab:blue", label="trial")
            ax.step(
                range(len(times)),
                [b if b is not None else math.nan for b in best_so_far],
                where="post",
                color="tab:green",
                label="best so far",
            )
            baseline = row["baseline_ns"] / 1e6 if row.get("baseline_ns") else None
            if baseline:
                ax.axhline(baseline, color="tab:red", linestyle="--", label="IREE default")
            # in_model_ns: (IREE's default, the winner) re-measured interleaved at the export
            confirmed = row["in_model_ns"][1] / 1e6 if row.get("in_model_ns") else None
            if confirmed:
                ax.axhline(confirmed, color="tab:purple", linestyle=":", label="winner in model")
            ax.set_title(_label(row, several), fontsize=8)
            ax.set_yscale("log")  # poor configs are 10-100x slower; the interesting part is near the best
            low, high = ax.get_ylim()
            if high <= low * 1.01:  # one time only (every other trial failed): give the axis a height
                ax.set_ylim(low / 1.5, high * 1.5)
            ax.set_xlabel("trial")
            ax.set_ylabel("ms per call")
            ax.legend(fontsize=6)
            series[_label(row, several)] = {
                "trial_ms": times,
                "best_so_far_ms": best_so_far,
                "default_ms": baseline,
                "winner_in_model_ms": confirmed,
            }
        for ax in list(axes.flat)[len(rows) :]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(folder / "search_history.png", dpi=90)
        plt.close(fig)
        drawn["search_history.png"] = series

    timed = [r for r in summary["dispatches"] if r.get("tuned_ns")]
    if timed:
        timed = sorted(timed, key=lambda r: -r["share"])
        labels = [_label(r, several) for r in timed]
        default = [(r.get("baseline_ns") or r["default_ns"]) / 1e6 for r in timed]
        best = [r["tuned_ns"] / 1e6 for r in timed]
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(timed) + 1.2))
        y = range(len(timed))
        ax.barh([i + 0.2 for i in y], default, height=0.4, color="tab:red", label="IREE default")
        ax.barh([i - 0.2 for i in y], best, height=0.4, color="tab:green", label="best config")
        ax.set_yticks(list(y), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("ms per call (in-model profile)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "dispatch_times.png", dpi=90)
        plt.close(fig)
        drawn["dispatch_times.png"] = {l: {"default_ms": d, "best_ms": b} for l, d, b in zip(labels, default, best)}

    flags = [f for f in summary.get("flag_candidates") or [] if f.get("median_ms")]
    if flags:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(flags) + 1.2))
        medians = [f["median_ms"] for f in flags]
        spreads = [f["median_ms"] * f.get("spread", 0.0) for f in flags]
        ax.barh(range(len(flags)), medians, xerr=spreads, color="tab:blue")
        ax.set_yticks(range(len(flags)), [f["name"] for f in flags], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("ms per model call (median of interleaved rounds; bar: spread)")
        fig.tight_layout()
        fig.savefig(folder / "flag_candidates.png", dpi=90)
        plt.close(fig)
        drawn["flag_candidates.png"] = {f["name"]: f["median_ms"] for f in flags}
    return drawn
