"""Trials per minute with whole-model vs executable-level trial builds, and whether the two
kinds of build time the same configs alike.

Runs the job twice (a run already in the output folder is reused), one after the other, same seed and budget: `search.trial_build: model`
then `executable`, each into its own folder with its own database (no cache shared). Then:
- trials per minute: trials evaluated (cache entries of kind `trial`) over the search's wall
  time (first trial start to last trial end, per target study, summed);
- agreement: for every config evaluated `ok` in both runs, the ratio of its target's
  in-model time (executable build / whole-model build); the same seed makes the searches'
  first (random) trials coincide. Printed as median and 10th-90th percentile per target.

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
    cmd = [sys.executable, "-m", "tuner.cli", "--config", str(job), "--output", str(output / mode), "--quiet"]
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
