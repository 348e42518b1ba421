"""The transform-dialect tier against IREE's pipelines, with the same budget per dispatch.

For each tuning target of one build of a finished job, two searches of `--trials` trials each,
random sampler, one after the other, every trial timed in the whole model like any trial:
- pipelines: the heuristic proposer's skeletons (IREE's default and its neighbourhood, the
  family's library, the whole space), IREE's default config first;
- transform dialect: the tier's skeleton alone.
Prints per target IREE's default (as a trial), the best of each, and best pipeline / best
script (> 1: the script is faster). Both searches share the job's evaluation cache. Then
(`--rounds`) the two winners are built into the whole model, one spec each, and their
dispatch timed in the model in interleaved rounds (A B A B): the median ratio and its range.

    python benchmarks/transform_tier.py --report reports/mobilenet --build channels-last --trials 16
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from schedtune import iree  # noqa: E402
from schedtune.builds import ModelContext  # noqa: E402
from schedtune.dispatches import analyze_model, find_targets  # noqa: E402
from schedtune.evaluation import Evaluator  # noqa: E402
from schedtune.proposers import HeuristicProposer, ProposalRequest, default_values  # noqa: E402
from schedtune.search import tune_target  # noqa: E402
from schedtune.spaces import load_space  # noqa: E402
from schedtune.spec import TRANSFORM_DIALECT, render_spec  # noqa: E402
from schedtune.store import Cache  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=pathlib.Path, required=True, help="a finished job's report folder")
    parser.add_argument("--build", default="default", help="a flag candidate of the job (default, channels-last, ...)")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved in-model rounds of the two winners")
    args = parser.parse_args()
    summary = json.loads((args.report / "summary.json").read_text())
    flags = next(c["flags"] for c in summary["flag_candidates"] if c["name"] == args.build)
    model = ModelContext(
        pathlib.Path(summary["model_mlir"]),
        summary["entry"],
        [pathlib.Path(p) for p in summary["input_files"]],
        [*summary["default_flags"], *flags],
        args.report / "work",
    )
    analysis = analyze_model(model)
    targets, _ = find_targets(analysis.dispatches, analysis.timings, time_share=0.9, max_targets=8)
    cache = Cache(f"sqlite:///{args.report / 'transform_tier.db'}")
    evaluator = Evaluator(model, cache)
    storage = f"sqlite:///{args.report / 'transform_tier.db'}"
    print(f"{summary['job']} under {args.build}: {args.trials} trials per search, IREE worker threads as the job's")
    print(f"{'target':30s} {'default us':>10s} {'pipelines':>10s} {'script':>10s} {'pipe/script':>11s}  script trials")
    for target in targets:
        space = load_space(target.root.family)
        if space is None:
            continue
        space = space.admitting(target.root).offering_transform_dialect(target.root)
        if TRANSFORM_DIALECT not in space.pipelines:
            print(f"{target.label:30s} (its dispatch cannot be rebuilt by a script)")
            continue
        request = ProposalRequest(target, space, iree.host_cpu_features(), None)
        skeletons = HeuristicProposer().propose(request).skeletons
        scripted = tuple(s for s in skeletons if s.pipeline == TRANSFORM_DIALECT)
        piped = tuple(s for s in skeletons if s.pipeline != TRANSFORM_DIALECT)
        defaults = {piped[0].name: default_values(piped[0], request)} if piped[0].name == "near-default" else {}
        best = {}
        winners = {}
        statuses = {}
        for name, group, enqueued in (("pipelines", piped, defaults), ("script", scripted, {})):
            outcome = tune_target(
                target,
                space,
                group,
                enqueued,
                evaluator,
                storage=storage,
                study_name=f"{target.key}:{args.build}:{name}:{args.seed}",
                trials=args.trials,
                sampler="random",
                seed=args.seed,
            )
            best[name] = outcome.best_ns
            winners[name] = outcome.best_config
            statuses[name] = outcome.statuses
            if name == "pipelines":
                base = outcome.baseline_ns
        show = lambda ns: "-" if ns is None else f"{ns / 1e3:.0f}"  # noqa: E731
        ratio = f"{best['pipelines'] / best['script']:.2f}" if best["pipelines"] and best["script"] else "-"
        print(
            f"{target.label:30s} {show(base):>10s} {show(best['pipelines']):>10s} "
            f"{show(best['script']):>10s} {ratio:>11s}  {statuses['script']}"
        )
        if args.rounds and all(winners.values()):
            print("   in the model: " + _head_to_head(model, target, winners, args.rounds))


def _head_to_head(model: ModelContext, target, winners: dict, rounds: int) -> str:
    """Best pipeline config vs best script, each in a whole-model build, the target's dispatches
    timed in interleaved rounds; 'pipeline/script median (range)', > 1: the script is faster."""
    builds = {}
    for name, config in winners.items():
        built = model.compile(model.workdir / f"tier_{name}", spec_text=render_spec([(target.root.matcher, config)]))
        if not built.ok:
            return f"the {name} build failed: {built.error[:200]}"
        builds[name] = built.vmfb
    ratios = []
    for _ in range(rounds):
        ns = {}
        for name, vmfb in builds.items():
            timings = iree.profile_dispatches(vmfb, model.entry, model.inputs, model.workdir / f"tier_prof_{name}")
            ns[name] = iree.dispatches_ns(timings, target.dispatches)
        ratios.append(ns["pipelines"] / ns["script"])
    return f"pipeline/script {statistics.median(ratios):.2f} (per round {min(ratios):.2f}-{max(ratios):.2f})"


if __name__ == "__main__":
    main()
