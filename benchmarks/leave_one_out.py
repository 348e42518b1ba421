"""Zero-trial tuning from a shared history, leave one model out.

For each config: a full tune (skipped when its folder already holds one), then its studies
exported as a history file. Then, per model M: a fresh storage gets every other model's
records (`tune db import`), and `tune --config M --from-history` runs in a fresh folder. Printed
per model: the end-to-end speed-up of the full tune, of its flags alone, and of zero-trial
tuning; the share of the full tune's gain reached (over 1.0x, and over the flags alone), and
the seconds zero-trial tuning took (with and without the model import, which a fresh folder
repeats).

    python benchmarks/leave_one_out.py --output /tmp/loo configs/cnn.yaml configs/resnet.yaml ...
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]


def _tune(config: pathlib.Path, output: pathlib.Path, *extra: str) -> float:
    start = time.monotonic()
    cmd = [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--output", str(output), "--quiet", *extra]
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.monotonic() - start


def _db(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "schedtune.cli", "db", *args], check=True, cwd=REPO, stdout=subprocess.DEVNULL
    )


def _speedups(summary: dict) -> tuple[float, float]:
    """(what ships vs IREE's default, the fastest flag set alone vs IREE's default), end to end."""
    shipped = summary["end_to_end"].get("speedup") or 1.0
    flags = [f.get("speedup") or 1.0 for f in summary.get("flag_candidates") or [] if f.get("status") == "ok"]
    return shipped, max([1.0, *flags])


def _import_seconds(log: pathlib.Path) -> float:
    """Seconds of the model import, from tune.log's first two timestamps."""
    from datetime import datetime

    stamps = [l[:23] for l in log.read_text().splitlines()[:2]]
    if len(stamps) < 2:
        return 0.0
    a, b = (datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in stamps)
    return (b - a).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--output", required=True)
    parser.add_argument("--only", nargs="+", help="leave out only these models (all configs still give history)")
    args = parser.parse_args()
    out = pathlib.Path(args.output).resolve()
    configs = [pathlib.Path(c).resolve() for c in args.configs]
    names = [yaml.safe_load(c.read_text())["name"] for c in configs]
    full = {}
    for config, name in zip(configs, names):
        folder = out / "full"
        if not (folder / name / "summary.json").exists():
            print(f"full tune of {name} ...", flush=True)
            _tune(config, folder)
        _db("export", str(out / f"{name}.jsonl"), "--storage", f"sqlite:///{folder / name / 'study.db'}")
        full[name] = json.loads((folder / name / "summary.json").read_text())
    rows = []
    for config, name in zip(configs, names):
        if args.only and name not in args.only:
            continue
        folder = out / f"zero_{name}"
        if (folder / name).exists():  # a fresh folder: an old study would be resumed, not re-run
            shutil.rmtree(folder / name)
        storage = f"sqlite:///{folder / name / 'study.db'}"
        (folder / name).mkdir(parents=True, exist_ok=True)
        for other in names:
            if other != name:
                _db("import", str(out / f"{other}.jsonl"), "--storage", storage)
        seconds = _tune(config, folder, "--from-history")
        zero = json.loads((folder / name / "summary.json").read_text())
        full_x, flags_x = _speedups(full[name])
        zero_x, _ = _speedups(zero)
        share = (zero_x - 1) / (full_x - 1) if full_x > 1.0001 else float("nan")
        beyond = (zero_x - flags_x) / (full_x - flags_x) if full_x > flags_x + 1e-4 else float("nan")
        imported = _import_seconds(folder / name / "tune.log")
        rows.append((name, full_x, flags_x, zero_x, share, beyond, seconds, seconds - imported))
    print(
        f"{'model':<14}{'full':>7}{'flags':>7}{'zero':>7}{'share':>8}{'beyond flags':>14}{'seconds':>9}{'w/o import':>12}"
    )
    for name, full_x, flags_x, zero_x, share, beyond, seconds, no_import in rows:
        print(
            f"{name:<14}{full_x:>6.2f}x{flags_x:>6.2f}x{zero_x:>6.2f}x{share:>8.0%}{beyond:>14.0%}"
            f"{seconds:>9.0f}{no_import:>12.0f}"
        )
    shares = [r[4] for r in rows if r[4] == r[4]]
    if shares:
        print(f"mean share of the full-tune gain: {sum(shares) / len(shares):.0%} over {len(shares)} model(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
