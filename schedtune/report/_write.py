from __future__ import annotations

import json
import logging
import math
import pathlib
import statistics
from typing import Any

from tabulate import tabulate

from ..export import RACE_TIE
from ..families import element_bytes
from ..files import write_atomic
from ._plots import write_plots

log = logging.getLogger("schedtune")


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def write_report(folder: pathlib.Path, summary: dict[str, Any]) -> tuple[pathlib.Path, pathlib.Path]:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        summary["plots"] = write_plots(folder, summary)
    except Exception as exc:  # pictures must never cost the job its report
        log.warning("plots not written: %s: %s", type(exc).__name__, exc)
        summary["plots"] = {}
    json_path = folder / "summary.json"
    write_atomic(json_path, json.dumps(summary, indent=2, sort_keys=False))
    lines = [f"# schedtune report: {summary['job']}", "", headline(summary), ""]
    precision = summary.get("precision")
    if precision:
        lines += [
            f"**Precision**: contraction inputs ({precision['operations']}) in {precision['contractions']} with f32 "
            f"accumulation: relative L2 error {precision['error']:.3g} against IREE's f32 default build "
            f"(budget {precision['max_error']:g}).",
            "",
        ]
    for warning in summary.get("busy_warnings") or []:
        lines += [f"**Warning**: {warning}.", ""]
    export = summary.get("export") or {}
    if export.get("confirm_failures"):
        lines += ["**Warning**: confirmation runs failed and were tried again:", ""]
        lines += [f"- {failure}" for failure in export["confirm_failures"]] + [""]
    for name, why in (export.get("dropped_contenders") or {}).items():
        lines += [f"**Warning**: build `{name}` was left out of the export: its confirmation failed twice ({why}).", ""]
    fallbacks = summary.get("proposer_fallbacks") or {}
    if fallbacks:
        lines += [
            f"**Warning**: the configured proposer failed on {len(fallbacks)} target(s); the heuristic "
            "proposer stood in:",
            "",
        ]
        lines += [f"- `{label}`: {why}" for label, why in fallbacks.items()] + [""]
    if summary.get("search_mode") == "from_history":
        lines += [
            "Zero-trial tuning (`--from-history`): per target, IREE's default and the nearest configs "
            "of finished studies and imported records were checked and timed here; nothing was searched.",
            "",
        ]
    lines += [
        f"- compiler: `{summary['compiler_version']}`, target CPU `{summary['target_cpu']}`",
        f"- model: `{summary['model_mlir']}`, entry `{summary['entry']}`, inputs {' '.join(summary['inputs'])}",
        f"- tuned flags: `{' '.join(summary['tuned_flags']) or '(none beyond the target flags)'}`",
        f"- use: `iree-compile {_tuned_source(summary)} {' '.join(summary['default_flags'])} "
        f"$(cat compile_flags.txt) --iree-codegen-tuning-spec-path=tuning_spec.mlir --mlir-disable-threading"
        " -o model.vmfb` (`--mlir-disable-threading` avoids an occasional deadlock of IREE 3.13 with tuning specs;"
        " the module is the same without it)",
        *_run_advice(summary.get("scheduling", "normal")),
        *_call_advice(summary["inputs"]),
        "",
        "## Dispatches (best first)",
        "",
    ]
    # The search's estimate comes from one profile per trial (noisy, and against the analysis
    # profile where no baseline trial exists); the in-model figure is the export's interleaved
    # re-measurement and is what the ranking and any claim should rest on.
    rows = sorted(summary["dispatches"], key=lambda r: (-(_in_model(r) or 0), -(r.get("speedup") or 0)))
    several = len({r.get("build") for r in rows}) > 1
    table = [
        [
            f"{r['build']}: {r['label']}" if several else r["label"],
            r["op_kind"],
            f"{100 * r['share']:.1f}%",
            _ms(r["default_ns"]),
            _ms(r.get("tuned_ns")),
            f"{r['speedup']:.2f}x" if r.get("speedup") else "-",
            f"{_in_model(r):.2f}x" if _in_model(r) else "-",
            _gflops(r),
            r["trials"],
            r["status"] if not r.get("route") else f"{r['status']}: {r['route']}",
        ]
        for r in rows
    ]
    lines.append(
        tabulate(
            table,
            headers=[
                "target",
                "op",
                "share",
                "default ms",
                "best trial ms",
                "search estimate",
                "in model (confirmed)",
                "GFLOP/s default -> tuned",
                "trials",
                "status",
            ],
            tablefmt="github",
        )
    )
    lines += [
        "",
        "Times are iree-profile per-call dispatch times (they rank configs; they are not wall time). "
        "'search estimate': best trial vs the baseline, one profile each; 'in model': the export's "
        "interleaved re-measurement of the winner, which decides what ships.",
        *_yardstick_lines(summary.get("yardstick")),
    ]
    if summary["plots"]:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({name})" for name in summary["plots"]]
    untuned = summary.get("untuned_dispatches", [])
    if untuned:
        lines += ["", "## Not tuned", ""]
        lines.append(
            tabulate(
                [[u["name"], u["family"], f"{100 * u['share']:.1f}%", u["reason"]] for u in untuned],
                headers=["dispatch", "op", "share", "why"],
                tablefmt="github",
            )
        )
    flags = summary.get("flag_candidates")
    if flags:
        lines += ["", "## Model-level flags", ""]
        lines.append(
            tabulate(
                [
                    [
                        f["name"],
                        " ".join(f["flags"]) or "-",
                        _flag_status(f),
                        f"{f['median_ms']:.2f}" if "median_ms" in f else "-",
                        f"{f['speedup']:.2f}x" if "speedup" in f else "-",
                    ]
                    for f in flags
                ],
                headers=["candidate", "flags", "status", "median ms", "vs default"],
                tablefmt="github",
            )
        )
    lines += _pipeline_lines(summary.get("pipeline_search"))
    export = summary.get("export") or {}
    if len(export.get("contenders", [])) > 1:
        lines += [
            "",
            "End to end, each candidate build against IREE's default: "
            + ", ".join(
                f"{c['name']}{' + tuned dispatches' if c['tuned'] else ' flags alone'} {c['speedup']:.2f}x"
                for c in export["contenders"]
            )
            + f"; shipped: **{export['shipped']}**."
            + _race_text(export),
        ]
    plan = summary.get("tuning_plan")
    if plan:
        expected = ", ".join(f"{n} {ms:.2f} ms" for n, ms in sorted(plan["expected_ms"].items(), key=lambda kv: kv[1]))
        lines += [
            "",
            f"Tuning builds: {', '.join(plan['builds'])} (expected after tuning: {expected}; builds within "
            f"{100 * plan['margin']:.0f}% of the best are all tuned and the end-to-end confirmation picks).",
        ]
    if flags and any("tunable_share" in f for f in flags):
        lines += [
            "",
            "Tunable share: "
            + ", ".join(f"{f['name']} {100 * f['tunable_share']:.0f}%" for f in flags if "tunable_share" in f)
            + " of the time in ops a spec can tune.",
        ]
    winners = [r for r in rows if r.get("winning_config")]
    if winners:
        lines += ["", "## Winning configs", ""]
        for r in winners:
            lines.append(f"- `{r['label']}`: `{json.dumps(r['winning_config'], sort_keys=True)}`")
    md_path = folder / "report.md"
    write_atomic(md_path, "\n".join(lines) + "\n")
    return json_path, md_path


def _pipeline_lines(search: dict | None) -> list[str]:
    """The pipeline search: every pipeline measured, fastest first, and which went on."""
    if not search:
        return []
    tried = sorted(search["tried"], key=lambda r: (r["ratio"] is None, r["ratio"] or 0))
    table = [
        [
            r["pipeline"],
            r["source"],
            r["status"] + (" (2 rounds)" if r.get("stopped_early") else ""),
            f"{r['ratio']:.3f}" if r["ratio"] is not None else (r.get("error") or "")[:60],
        ]
        for r in tried
    ]
    carried = ", ".join(search.get("carried") or []) or "none"
    return [
        "",
        "## Pipeline search",
        "",
        f"{search['measured']} pipelines built and measured (study `{search['study']}`); time is the median of "
        "rounds interleaved with IREE's default build. Measured again beside the fixed sets above: " + carried + ".",
        "",
        tabulate(table, headers=["pipeline", "proposed by", "status", "time / default"], tablefmt="github"),
    ]


def _flag_status(row: dict[str, Any]) -> str:
    """A flag candidate's status, with why it stopped early and its error against a budget."""
    status = row["status"]
    if row.get("raced_out_after"):
        status += f" (out of reach after {row['raced_out_after']} round(s))"
    if row.get("error_budget") is not None and row.get("max_error") is not None:
        status += f" (error {row['max_error']:.3g}, budget {row['error_budget']:g})"
    return status


def headline(summary: dict[str, Any]) -> str:
    """The first line of the report: what ships, and how fast it is end to end."""
    e2e = summary["end_to_end"]
    export = summary.get("export") or {}
    measured = (
        f"{e2e['default_median_ms']:.2f} ms -> {e2e['tuned_median_ms']:.2f} ms, median of {e2e['rounds']} "
        f"interleaved rounds; per-round ratio {e2e['speedup_min']:.2f}-{e2e['speedup_max']:.2f}x"
    )
    withdrawn = export.get("withdrawn")
    if withdrawn:
        what = ", ".join(withdrawn["kept"]) or "no dispatch configs"
        flags = f" with flags {' '.join(withdrawn['flags'])}" if withdrawn["flags"] else ""
        return (
            f"**Nothing exported**: the best tuned build ({what}{flags}) measured {withdrawn['speedup']:.2f}x "
            "end to end, slower than IREE's default; the exported spec is empty and no flags are set."
        )
    kept = e2e.get("kept") or []
    flags = summary.get("tuned_flags") or []
    if not kept and not flags:
        return f"**Nothing exported**: no tuned dispatch or flag set beat IREE's default end to end ({measured})."
    parts = []
    if kept:
        parts.append(f"{len(kept)} tuned dispatch config(s)")
    if flags:
        parts.append(f"flags `{' '.join(flags)}`")
    return (
        f"**Exported: {' + '.join(parts)}, {e2e['speedup']:.2f}x** faster than IREE's default end to end ({measured})."
    )


def _in_model(row: dict) -> float | None:
    """Default over tuned dispatch time as re-measured in the full model at export."""
    pair = row.get("in_model_ns")
    return pair[0] / pair[1] if pair and pair[1] else None


def _race_text(export: dict) -> str:
    """The head-to-head race of the candidate builds (all in the same interleaved rounds),
    which decides between them unless it tied; empty when there was none."""
    contenders = export["contenders"]
    if not all(c.get("head_to_head_ms") for c in contenders):
        return ""
    times = ", ".join(f"{c['name']} {statistics.median(c['head_to_head_ms']):.2f} ms" for c in contenders)
    tied = export.get("race_tie") or []
    verdict = (
        f"{' and '.join(tied)} tie (within {RACE_TIE:.0%}), so their own speed-ups above decide"
        if tied
        else "the speed-ups above come from separate runs, so the race decides"
    )
    return (
        f" Head to head, in the same {len(contenders[0]['head_to_head_ms'])} interleaved rounds (medians): "
        f"{times}; {verdict}."
    )


COPY_ADVICE_BYTES = 1 << 20  # inputs from which a per-call copy is worth avoiding


def _input_bytes(specs: list[str]) -> int:
    """Bytes of the inputs given as shape specs (`4x197x384xf32`)."""
    total = 0
    for spec in specs:
        *dims, dtype = spec.split("x")
        total += math.prod(int(d) for d in dims) * element_bytes(dtype)
    return total


def _call_advice(inputs: list[str]) -> list[str]:
    """How to hand large inputs to the module from Python without a copy per call."""
    size = _input_bytes(inputs)
    if size < COPY_ADVICE_BYTES:
        return []
    return [
        f"- call: from Python, pass the inputs ({size / (1 << 20):.1f} MiB) in place"
        " (`device.allocator.import_host_allocation`, 64-byte aligned: IREE 3.13 crashes on an unaligned"
        " import) or keep them on the device (`iree.runtime.asdevicearray` once); a plain call copies every"
        " numpy input into new buffers on each call, which costs far more than the bytes when the allocator"
        " hands out fresh pages (README: 'Pass large numpy inputs without a copy')."
    ]


def _run_advice(scheduling: str) -> list[str]:
    """How the timings were taken, and how to run the module to get them too."""
    if scheduling != "batch":
        return ["- timed under the tuner's own scheduling policy (`target.scheduling: normal`)"]
    return [
        "- run: `chrt --batch 0 YOUR_APP` (or `os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))` before"
        " the runtime starts its workers). Every time here was measured so: IREE's host thread, woken at the end"
        " of a call, otherwise often preempts the worker it waits for and spins until that worker runs again,"
        " which makes calls slower at random when there are as many workers as cores"
        " (`target.scheduling: normal` measures without it)."
    ]


def _tuned_source(summary: dict) -> str:
    """What the tuned build compiles: the model, or its prepared second half (batch-1 convs
    named again, so that the spec reaches them)."""
    if summary.get("prepared_model"):
        return "model.prepared.mlirbc --compile-from=global-optimization"
    return "MODEL"


def _gflops(row: dict) -> str:
    """The target's speed in the model: its op's flops over the analysis profile's time, and
    tuned, that times the speed-up the export measured in the model (the confirmation's
    profile is its own, with rounds of its own: only its ratio is comparable)."""
    flops = row.get("flops")
    if not flops or not row.get("default_ns"):
        return "-"
    default = flops / row["default_ns"]
    in_model = row.get("in_model_ns")
    if in_model and row.get("status") == "tuned" and in_model[1]:
        return f"{default:.0f} -> {default * in_model[0] / in_model[1]:.0f}"
    return f"{default:.0f}"


def _yardstick_lines(yardstick: dict | None) -> list[str]:
    if not yardstick:
        return []
    return [
        "",
        f"GFLOP/s: the op's floating-point operations per model call over its dispatches' time. "
        f"Yardstick measured in the same job: {yardstick['what']} at {yardstick['gflops']:.0f} GFLOP/s.",
    ]
