"""Trials a search needs with and without a warm start from other models' history.

For each seed, the job runs twice into fresh storages: once with `search.warm_start: false`,
once with the records of a history file imported first (and warm start on). Model-level flags
are not searched (`tune_model_flags: false`), so both runs tune the same targets. Per target,
the reference is the best time any run found; printed is the number of counted trials each
run needed to come within 5% of it (its trial index + 1; "-" if never), median over seeds.

    python benchmarks/warm_start.py --config configs/resnet.yaml --history /tmp/loo/others.jsonl \
        --output /tmp/ws --seeds 0 1 2 --trials 30
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]


def _job(config: pathlib.Path, out: pathlib.Path, name: str, seed: int, trials: int, warm: bool) -> pathlib.Path:
    raw = yaml.safe_load(config.read_text())
    raw["name"] = name
    raw.pop("storage", None)
    raw.setdefault("search", {}).update({"seed": seed, "warm_start": warm, "tune_model_flags": False})
    raw.setdefault("budget", {})["trials_per_dispatch"] = trials
    for key in ("factory", "path"):
        if raw["model"].get(key):
            path, sep, rest = raw["model"][key].partition(":")
            raw["model"][key] = f"{(config.parent / path).resolve()}{sep}{rest}"
    job = out / f"{name}.yaml"
    job.write_text(yaml.safe_dump(raw))
    return job


def _run(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "schedtune.cli", *args], check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--history", required=True, help="records of other models (tune db export)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    config = pathlib.Path(args.config).resolve()
    out = pathlib.Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    timelines: dict[tuple[str, int], dict[str, list]] = {}
    for seed in args.seeds:
        for warm in (False, True):
            name = f"{'warm' if warm else 'cold'}{seed}"
            job = _job(config, out, name, seed, args.trials, warm)
            if not (out / name / "summary.json").exists():
                if warm:
                    (out / name).mkdir(parents=True, exist_ok=True)
                    _run(["db", "import", args.history, "--config", str(job), "--output", str(out)])
                _run(["--config", str(job), "--output", str(out), "--quiet"])
            summary = json.loads((out / name / "summary.json").read_text())
            timelines[(name[:4], seed)] = {r["label"]: r["timeline_ms"] for r in summary["dispatches"]}
    labels = sorted({l for t in timelines.values() for l in t})
    print(f"{'target':<34}{'best ms':>9}{'cold: trials to 95%':>22}{'warm: trials to 95%':>22}")
    for label in labels:
        best = min(
            (v for t in timelines.values() for v in t.get(label, []) if v is not None),
            default=None,
        )
        if best is None:
            continue
        needed = {}
        for kind in ("cold", "warm"):
            counts = []
            for seed in args.seeds:
                times = timelines[(kind, seed)].get(label, [])
                hit = next((i + 1 for i, v in enumerate(times) if v is not None and v <= best / 0.95), None)
                counts.append(hit if hit is not None else float("inf"))
            needed[kind] = statistics.median(counts)
        fmt = lambda x: "-" if x == float("inf") else f"{x:g}"  # noqa: E731
        print(f"{label:<34}{best:>9.3f}{fmt(needed['cold']):>22}{fmt(needed['warm']):>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
