"""One table over the model suite from the reports (`tune` + `tune compare` outputs).

    python benchmarks/suite_table.py [--reports reports] [JOB ...]

Per job: the tune's own end-to-end speed-up (interleaved A/B at export), then from
compare.json the medians of IREE default, IREE tuned, onnxruntime, PyTorch eager and
torch.compile, and how tuned IREE stands against each (>1: tuned IREE is faster).
"""

from __future__ import annotations

import argparse
import json
import pathlib

from tabulate import tabulate

SUITE = ["cnn", "resnet", "resnet_b1", "mobilenet", "mobilenet_b1", "bert", "mlp"]
# Real size: batch 1 at 224x224, as deployed.
REAL_SIZE = ["resnet18", "mobilenet_v3", "resnet50"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=pathlib.Path, default=pathlib.Path("reports"))
    parser.add_argument("jobs", nargs="*", default=SUITE + REAL_SIZE)
    args = parser.parse_args()
    rows = []
    for job in args.jobs:
        folder = args.reports / job
        if not (folder / "summary.json").exists() or not (folder / "compare.json").exists():
            rows.append([job] + ["(not run)"] * 8)
            continue
        summary = json.loads((folder / "summary.json").read_text())
        compare = {r["runner"]: r["median_ms"] for r in json.loads((folder / "compare.json").read_text())["rows"]}
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
