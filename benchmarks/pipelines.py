"""The model-level stage alone: the pipeline search against today's fixed flag sets.

Per config, runs the job's model-level stage (pipeline search, then every fixed flag set and
the best searched pipelines built, numerics checked and timed interleaved in one run by
`choose_flags`) into a fresh output folder, and prints the best fixed set beside the best
searched pipeline, each against IREE's default in that same interleaved run.

    python benchmarks/pipelines.py --configs configs/cnn.yaml configs/mobilenet.yaml \
        --output /tmp/pipes --trials 16

With `--tune`, instead runs the whole job twice, one run after the other with separate
storages: with the pipeline search (`--trials`) and without it (`pipeline_trials: 0`, the
fixed flag sets only), and prints each run's end-to-end result and what it shipped.

    python benchmarks/pipelines.py --configs configs/mobilenet.yaml --output /tmp/full --tune

With `--order A B`, instead builds the passes A,B and B,A (and each alone) on each model and
times them interleaved against the default: does the order of two passes matter?

    python benchmarks/pipelines.py --configs configs/mobilenet.yaml --output /tmp/order \
        --order iree-preprocessing-convert-conv-to-channels-last iree-preprocessing-convert-1x1-filter-conv2d-to-matmul
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import pathlib
import subprocess
import sys
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from schedtune import job as stages  # noqa: E402
from schedtune.config import load_config  # noqa: E402
from schedtune.pipelines import PassStep, Pipeline, load_pipeline_space, pipeline_error  # noqa: E402
from schedtune.search import choose_flags  # noqa: E402
from schedtune.spaces import FlagCandidate  # noqa: E402


def _best(rows: list[dict], names: set[str]) -> dict | None:
    timed = [r for r in rows if r["name"] in names and r.get("speedup")]
    return max(timed, key=lambda r: r["speedup"]) if timed else None


def model_level(config: pathlib.Path, out: pathlib.Path, trials: int, patience: int, rounds: int) -> dict:
    job = load_config(config, output_override=str(out))
    job = dataclasses.replace(
        job, search=dataclasses.replace(job.search, pipeline_trials=trials, pipeline_patience=patience)
    )
    start = time.monotonic()
    ctx = stages._prepare(job, None, start)
    proposer = stages._make_proposer(ctx)
    try:
        level = stages._model_level(ctx, proposer)
    finally:
        proposer.close()
    stats = proposer.write_records(job.report_dir)
    rows = level.flag_rows
    fixed = _best(rows, {r["name"] for r in rows if not r["name"].startswith(("searched-", "user-"))} - {"default"})
    searched = _best(rows, {r["name"] for r in rows if r["name"].startswith("searched-")})
    # The two winners again, with more rounds, interleaved with the default in one run: the
    # stage's own comparison had every candidate in it and five rounds.
    final = [FlagCandidate("default", ())] + [
        FlagCandidate(r["name"], tuple(r["flags"]), r.get("note", "")) for r in (fixed, searched) if r
    ]
    again = choose_flags(ctx.base, final, ctx.reference, ctx.cache, rounds=rounds) if len(final) > 1 else None
    result = {
        "job": job.name,
        "seconds": time.monotonic() - start,
        "rows": rows,
        "pipeline_search": level.pipeline_search,
        "best_fixed": fixed,
        "best_searched": searched,
        "head_to_head": again.rows if again else [],
        "tuning_builds": list(level.plan.builds) if level.plan else ["default"],
        "llm": stats,
    }
    (out / f"{job.name}_model_level.json").write_text(json.dumps(result, indent=2))
    return result


def order(config: pathlib.Path, out: pathlib.Path, first: str, second: str, rounds: int) -> dict:
    job = load_config(config, output_override=str(out))
    ctx = stages._prepare(job, None, time.monotonic())
    space = load_pipeline_space()
    candidates = [FlagCandidate("default", ())]
    for name, passes in (
        (f"{first} only", (first,)),
        (f"{second} only", (second,)),
        ("A,B", (first, second)),
        ("B,A", (second, first)),
    ):
        pipeline = Pipeline(tuple(PassStep(p) for p in passes))
        error = pipeline_error(space, pipeline, strict=False)
        if error:
            raise SystemExit(error)
        candidates.append(FlagCandidate(name, tuple(space.flags(pipeline))))
    decision = choose_flags(ctx.base, candidates, ctx.reference, ctx.cache, rounds=rounds)
    # Whether the two orders build different programs at all: the executables' names and sizes.
    for row in decision.rows:
        vmfb = ctx.base.workdir / "flags" / f"{row['name']}.vmfb"
        if vmfb.exists():
            row["vmfb_sha256"] = hashlib.sha256(vmfb.read_bytes()).hexdigest()[:12]
    result = {"job": job.name, "A": first, "B": second, "rows": decision.rows}
    (out / f"{job.name}_order.json").write_text(json.dumps(result, indent=2))
    return result


def tune_both(config: pathlib.Path, out: pathlib.Path, trials: int) -> dict:
    """The whole job with and without the pipeline search; each run's summary.json fields."""
    raw = yaml.safe_load(config.read_text())
    for key in ("factory", "path"):
        if raw["model"].get(key):
            path, sep, rest = raw["model"][key].partition(":")
            raw["model"][key] = f"{(config.parent / path).resolve()}{sep}{rest}"
    raw.pop("storage", None)
    raw["output"] = str(out)
    runs = {}
    for arm, count in (("searched", trials), ("fixed", 0)):
        job = dict(raw, name=f"{raw['name']}_{arm}")
        job["search"] = {**raw.get("search", {}), "pipeline_trials": count, "tune_model_flags": True}
        path = out / f"{job['name']}.yaml"
        path.write_text(yaml.safe_dump(job))
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "schedtune.cli", "--config", str(path), "--quiet"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{job['name']}: tune failed: {proc.stderr.strip().splitlines()[-1:]}")
        summary = json.loads((out / job["name"] / "summary.json").read_text())
        e2e = summary["end_to_end"]
        runs[arm] = {
            "seconds": time.monotonic() - start,
            "shipped": summary["shipped"],
            "tuned_flags": summary["tuned_flags"],
            "speedup": e2e["speedup"],
            "range": [e2e["speedup_min"], e2e["speedup_max"]],
            "contenders": summary["export"].get("contenders", []),
        }
    return {"job": raw["name"], **runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--order", nargs=2, metavar=("A", "B"))
    parser.add_argument("--tune", action="store_true", help="whole jobs with and without the pipeline search")
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds of the final comparison")
    args = parser.parse_args()
    out = pathlib.Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for config in args.configs:
        config = pathlib.Path(config).resolve()
        if args.tune:
            result = tune_both(config, out, args.trials)
            lines.append(
                f"{result['job']}: "
                + "; ".join(
                    f"{arm} {r['speedup']:.3f}x (rounds {r['range'][0]:.2f}-{r['range'][1]:.2f}) shipped {r['shipped']}"
                    f" {' '.join(r['tuned_flags']) or '(no flags)'}, {r['seconds']:.0f} s"
                    for arm, r in ((a, result[a]) for a in ("searched", "fixed"))
                )
            )
            (out / f"{result['job']}_tune.json").write_text(json.dumps(result, indent=2))
        elif args.order:
            result = order(config, out, *args.order, args.rounds)
            cells = [
                f"{r['name']} {r['speedup']:.3f}x (spread {100 * r['spread']:.0f}%, build {r.get('vmfb_sha256', '?')})"
                if r.get("speedup")
                else f"{r['name']} {r['status']}"
                for r in result["rows"]
            ]
            lines.append(f"{result['job']}: " + "; ".join(cells))
        else:
            result = model_level(config, out, args.trials, args.patience, args.rounds)
            search = result["pipeline_search"] or {}
            heads = {r["name"]: r for r in result["head_to_head"]}
            fixed, searched = result["best_fixed"], result["best_searched"]

            def cell(row, heads=heads):
                if not row:
                    return "-"
                head = heads.get(row["name"], {})
                what = f"{row['name']} ({row['note']})" if row["name"].startswith("searched-") else row["name"]
                return f"{what} {head.get('speedup', 0):.3f}x spread {100 * head.get('spread', 0):.0f}%"

            lines.append(
                f"{result['job']}: best fixed {cell(fixed)} | best searched {cell(searched) if searched else 'none faster'}"
                f" | {search.get('measured', 0)} pipelines, {result['seconds']:.0f} s"
                f" | tuning builds {', '.join(result['tuning_builds'])}"
            )
        print(lines[-1], flush=True)
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
