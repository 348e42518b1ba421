"""Trials per minute with whole-model vs executable-level trial builds, and whether the two
kinds of build time the same configs alike.

Runs the job twice (a run already in the output folder is reused), one after the other, same seed and budget: `search.trial_build: model`
then `executable`, each into its own folder with its own database (no cache shared). Then:
- trials per minute: trials evaluated (cache entries of kind `trial`) over the search's wall
  time (first trial start to last trial end, per target study, summed);
- agreement: for every config evaluated `ok` in both runs, the ratio of its target's
  in-model time (executable build / whole-model build); the same seed makes the searches'
  first (random) trials coincide. Printed as median and 10th-90th percentile per target.
  Two runs' single profiles also differ by noise, so then, per build kind, up to
  `--configs` of those configs are built both ways here and profiled interleaved
  (`--rounds` rounds, A B A B): the median ratio per config is the agreement.

    python benchmarks/trial_builds.py --config configs/mobilenet.yaml --output /tmp/tb
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sqlite3
import statistics
import subprocess
import sys
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(config: pathlib.Path, mode: str, output: pathlib.Path, max_minutes: float | None) -> float:
    raw = yaml.safe_load(config.read_text())
    raw.setdefault("search", {})["trial_build"] = mode
    raw.pop("storage", None)
    if raw["model"].get("factory"):  # relative to the config's folder
        path, _, name = raw["model"]["factory"].partition(":")
        raw["model"]["factory"] = f"{(config.parent / path).resolve()}:{name}"
    if raw["model"].get("path"):
        raw["model"]["path"] = str((config.parent / raw["model"]["path"]).resolve())
    job = output / f"{mode}.yaml"
    output.mkdir(parents=True, exist_ok=True)
    job.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "schedtune.cli", "--config", str(job), "--output", str(output / mode), "--quiet"]
    if max_minutes is not None:
        cmd += ["--max-minutes", str(max_minutes)]
    start = time.monotonic()
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.monotonic() - start


def _trials(db: pathlib.Path) -> dict[str, dict]:
    """label -> payload of every evaluated trial."""
    with sqlite3.connect(db) as con:
        rows = con.execute("select label, payload from schedtune_cache where kind = 'trial'").fetchall()
    return {label: json.loads(payload) for label, payload in rows}


def _search_seconds(db: pathlib.Path) -> float:
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "select study_id, min(datetime_start), max(datetime_complete) from trials "
            "where datetime_complete is not null group by study_id"
        ).fetchall()
    from datetime import datetime

    return sum((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() for _, a, b in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--max-minutes", type=float)
    parser.add_argument("--configs", type=int, default=12, help="configs re-measured interleaved (0: none)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    config, output = pathlib.Path(args.config).resolve(), pathlib.Path(args.output).resolve()
    name = yaml.safe_load(config.read_text())["name"]
    rows = {}
    for mode in ("model", "executable"):
        db = output / mode / name / "study.db"
        done = output / mode / name / "summary.json"
        # A finished run in the output folder is reused (its job's seconds from summary.json).
        wall = (
            json.loads(done.read_text())["seconds"] if done.exists() else _run(config, mode, output, args.max_minutes)
        )
        trials = _trials(db)
        search = _search_seconds(db)
        compile_s = [t["compile_s"] for t in trials.values() if t.get("compile_s")]
        rows[mode] = trials
        print(
            f"{mode:>10}: {len(trials)} trials in {search:.0f} s of search "
            f"({60 * len(trials) / max(search, 1e-9):.1f} trials/min), "
            f"median compile {statistics.median(compile_s):.2f} s, whole job {wall:.0f} s"
        )
    by_target: dict[str, list[float]] = {}
    both = differ = 0
    for label, whole in rows["model"].items():
        split = rows["executable"].get(label)
        both += split is not None
        differ += split is not None and split["status"] != whole["status"]
        if split and whole["status"] == split["status"] == "ok":
            by_target.setdefault(label.split(" ", 1)[0], []).append(split["time_ns"] / whole["time_ns"])
    print(f"configs evaluated in both runs: {both}, with a different verdict: {differ}")
    print("agreement (executable-build time / whole-model-build time, same config):")
    for target, ratios in sorted(by_target.items()):
        ratios.sort()
        lo, hi = ratios[len(ratios) // 10], ratios[(len(ratios) * 9) // 10 - (len(ratios) >= 10)]
        print(f"  {target}: {len(ratios)} configs, median {statistics.median(ratios):.3f}, p10-p90 {lo:.3f}-{hi:.3f}")
    if not by_target:
        print("  no config was evaluated ok in both runs")
    if args.configs:
        _interleaved(output / "executable.yaml", output / "executable" / name, rows["executable"], args)
    return 0


def _interleaved(job_file: pathlib.Path, report: pathlib.Path, trials: dict[str, dict], args) -> None:
    """Configs rebuilt both ways and profiled interleaved: executable / whole-model time."""
    import dataclasses

    from schedtune import iree
    from schedtune.builds import ModelContext
    from schedtune.config import load_config
    from schedtune.dispatches import analyze_model
    from schedtune.spec import CompilationConfig, render_spec

    job = load_config(job_file)
    summary = json.loads((report / "summary.json").read_text())
    build_flags = {"default": []} | {f["name"]: f["flags"] for f in summary["flag_candidates"]}
    work = pathlib.Path(args.output).resolve() / "interleaved"
    picked = [(label, t) for label, t in trials.items() if t["status"] == "ok"][:: max(1, len(trials) // args.configs)]
    targets_by_build: dict[str, dict] = {}
    ratios = []
    print(f"interleaved re-measurement ({args.rounds} rounds per config, executable / whole-model build):")
    for label, _ in picked[: args.configs]:
        target_label, config_text = label.split(" ", 1)
        config = CompilationConfig.from_json(json.loads(config_text))
        row = next(r for r in summary["dispatches"] if r["label"] == target_label)
        model = ModelContext(
            pathlib.Path(summary["model_mlir"]),
            summary["entry"],
            [pathlib.Path(p) for p in summary["input_files"]],
            summary["default_flags"] + build_flags[row["build"]],
            work,
            compile_timeout_s=job.budget.compile_timeout_s,
        )
        if row["build"] not in targets_by_build:
            targets_by_build[row["build"]] = {t.label: t for t in analyze_model(model).all_targets}
        target = targets_by_build[row["build"]][target_label]
        spec = render_spec([(target.root.matcher, config)])
        vmfbs = {}
        for mode in ("model", "executable"):
            built = dataclasses.replace(model, trial_build=mode).compile_trial(work / mode, target.dispatches, spec)
            vmfbs[mode] = built.vmfb
        times: dict[str, list[float]] = {"model": [], "executable": []}
        for _ in range(args.rounds):
            for mode in ("model", "executable"):
                profile = iree.profile_dispatches(vmfbs[mode], model.entry, model.inputs, work / f"p_{mode}")
                per = iree.per_call_ns(profile)
                times[mode].append(sum(per[d] for d in target.dispatches))
        ratio = statistics.median(times["executable"]) / statistics.median(times["model"])
        spread = max(times["model"]) / min(times["model"])
        ratios.append(ratio)
        print(f"  {target_label:<34} {ratio:.3f}  (whole-model build's own max/min over rounds {spread:.2f})")
    if ratios:
        print(
            f"  median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f} over {len(ratios)} configs"
        )


if __name__ == "__main__":
    sys.exit(main())
