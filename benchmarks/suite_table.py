"""One table over the model suite from the reports (`tune` + `tune compare` outputs).

    python benchmarks/suite_table.py [--reports reports] [JOB ...]
    python benchmarks/suite_table.py --readme README.md   # rewrite the README's results table

Per job: the tune's own end-to-end speed-up (interleaved A/B at export), then from
compare.json the medians of IREE default, IREE tuned, onnxruntime, PyTorch eager and
torch.compile, and how tuned IREE stands against each (>1: tuned IREE is faster).
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import re

from tabulate import tabulate

SUITE = ["cnn", "resnet", "resnet_b1", "mobilenet", "mobilenet_b1", "bert", "gpt2", "vit", "mlp"]
# Real size: batch 1 at 224x224, as deployed.
REAL_SIZE = ["resnet18", "mobilenet_v3", "resnet50"]


BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _machine(summary: dict) -> str:
    """E.g. "Zen 3, AVX2": AMD's generation from the family and model numbers where known."""
    model = summary.get("cpu_model", "?")
    found = re.search(r"family (\d+) model (\d+)", model)
    if found and model.startswith("AMD"):
        family, number = int(found.group(1)), int(found.group(2))
        zen4 = family == 25 and (0x10 <= number <= 0x1F or 0x60 <= number <= 0x7F or 0xA0 <= number <= 0xAF)
        model = "Zen 5" if family == 26 else "Zen 4" if zen4 else "Zen 3" if family == 25 else model
    features = summary.get("cpu_features", "").split(",")
    isa = "AVX-512" if any(f.startswith("avx512") for f in features) else "AVX2" if "avx2" in features else "no AVX2"
    return f"{model}, {isa}"


def _read(folder: pathlib.Path) -> tuple[dict, dict[str, float]] | None:
    """A job's summary.json and its compare.json medians by runner (None: either is missing)."""
    if not (folder / "summary.json").is_file() or not (folder / "compare.json").is_file():
        return None
    summary = json.loads((folder / "summary.json").read_text())
    compare = {r["runner"]: r["median_ms"] for r in json.loads((folder / "compare.json").read_text())["rows"]}
    return summary, compare


def update_readme(readme: pathlib.Path, reports: pathlib.Path) -> list[str]:
    """Rewrite the rows of the README's results table whose job has both a summary.json and a
    compare.json under `reports`; rows without them keep their earlier measurement. Returns
    the jobs updated."""
    text = readme.read_text()
    start, end = text.index(BEGIN), text.index(END)
    lines = text[start:end].splitlines()
    updated = []
    for i, line in enumerate(lines):
        job = re.search(r"\(`([\w-]+)`\)", line)
        if not line.startswith("|") or job is None:
            continue
        folder = reports / job.group(1)
        measured = _read(folder)
        if measured is None:
            continue
        summary, compare = measured
        tuned = compare["IREE tuned"]
        when = datetime.date.fromtimestamp((folder / "compare.json").stat().st_mtime).isoformat()
        cells = [c.strip() for c in line.strip("|").split("|")]
        cells[2:8] = [
            f"{compare['IREE default'] / tuned:.2f}x",
            f"{tuned:.2f}",
            *(
                f"{compare[name]:.2f}" if name in compare else "-"
                for name in ("onnxruntime", "PyTorch eager", "torch.compile")
            ),
            f"{_machine(summary)}, {when}",
        ]
        lines[i] = "| " + " | ".join(cells) + " |"
        updated.append(job.group(1))
    readme.write_text(text[:start] + "\n".join(lines) + "\n" + text[end:])
    return updated


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=pathlib.Path, default=pathlib.Path("reports"))
    parser.add_argument("--readme", type=pathlib.Path, help="rewrite this README's results table from the reports")
    parser.add_argument("jobs", nargs="*", default=SUITE + REAL_SIZE)
    args = parser.parse_args()
    if args.readme:
        updated = update_readme(args.readme, args.reports)
        print(f"{args.readme}: rows updated from reports: {', '.join(updated) or 'none'}")
        return 0
    rows = []
    for job in args.jobs:
        measured = _read(args.reports / job)
        if measured is None:
            rows.append([job] + ["(not run)"] * 8)
            continue
        summary, compare = measured
        tuned = compare["IREE tuned"]

        def cell(name: str, compare=compare, tuned=tuned) -> str:
            return f"{compare[name]:.2f} ({compare[name] / tuned:.2f}x)" if name in compare else "-"

        rows.append(
            [
                job,
                ", ".join(summary["inputs"]),
                f"{summary['end_to_end']['speedup']:.2f}x",
                f"{compare['IREE default']:.2f}",
                f"{tuned:.2f}",
                f"{compare['IREE default'] / tuned:.2f}x",
                cell("onnxruntime"),
                cell("PyTorch eager"),
                cell("torch.compile"),
            ]
        )
    print(
        tabulate(
            rows,
            headers=[
                "job",
                "input",
                "tune: tuned/default",
                "IREE default ms",
                "IREE tuned ms",
                "compare: tuned/default",
                "onnxruntime ms (vs tuned)",
                "PyTorch eager ms (vs tuned)",
                "torch.compile ms (vs tuned)",
            ],
            tablefmt="github",
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
