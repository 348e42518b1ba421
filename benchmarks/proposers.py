"""Compare proposers at the same trial budget, seeds repeated, on real dispatches.

    python benchmarks/proposers.py --local                        # the embedded SmolLM2 server
    python benchmarks/proposers.py --base-url URL --model NAME [--api-key-env VAR]
    python benchmarks/proposers.py --no-llm                       # the three non-LLM methods

Methods, each an Optuna study per (dispatch, seed) with the same budget:
  random-full     random search over the family's whole space
  tpe-full        TPE over the whole space
  heuristic+tpe   TPE over the heuristic proposer's skeletons
  llm+tpe         TPE over the LLM's skeletons (plus IREE's default neighbourhood)
All methods share one evaluation cache, so a config measured once has one time for everyone.
Prints, per dispatch and method, the best speed-up over IREE's default (median over seeds)
and the trials needed to reach 95% of the best speed any method found (median; '-' = never).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time
import warnings

import optuna
from tabulate import tabulate

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.dispatches import find_targets, read_configured_executables
from schedtune.evaluation import Evaluator
from schedtune.proposers import HeuristicProposer, ProposalRequest, default_values
from schedtune.search import tune_target
from schedtune.spaces import load_space
from schedtune.store import Cache

HERE = pathlib.Path(__file__).resolve().parent
DISPATCHES = {
    "matmul": (HERE / "models" / "matmul_512.mlir", ("512x512xf32", "512x512xf32")),
    "conv": (HERE / "models" / "conv_nhwc.mlir", ("2x58x58x64xf32", "3x3x64x64xf32")),
}


def analyse(name: str, out: pathlib.Path):
    model, inputs = DISPATCHES[name]
    work = out / name
    work.mkdir(parents=True, exist_ok=True)
    flags = iree.target_flags("host")
    built = iree.compile_model(model, work / "default.vmfb", flags, configs_dir=work / "configs")
    if not built.ok:
        sys.exit(f"{name}: default build failed: {built.error}")
    # Timed on the first input set, numerics checked on every set: as `tune` evaluates a trial.
    paths, *check_sets = iree.save_input_sets(inputs, work / "inputs", 0)
    timings = iree.profile_dispatches(work / "default.vmfb", "main", paths, work / "profile")
    targets, _ = find_targets(read_configured_executables(work / "configs"), timings, time_share=0.5, max_targets=1)
    return targets[0], ModelContext(model, "main", paths, flags, work, check_inputs=tuple(check_sets))


def trajectory(study: optuna.Study) -> list[float]:
    """Best time so far after each counted trial."""
    best, out = float("inf"), []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        status = t.user_attrs.get("status")
        if status in (None, "constraint", "duplicate", "in_progress", "lost"):
            continue
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
            best = min(best, t.value)
        out.append(best)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local", action="store_true", help="start the embedded local model server")
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    parser.add_argument("--api-key-env")
    parser.add_argument("--no-llm", action="store_true")
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dispatches", default="matmul,conv")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("reports/proposers"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{args.out.resolve() / 'runs.db'}"
    cache = Cache(url)
    storage = optuna.storages.RDBStorage(url)
    run_tag = time.strftime("%Y%m%d-%H%M%S")

    llm = None
    if not args.no_llm:
        from schedtune.config import ProposerSpec
        from schedtune.proposers.llm import make_llm_proposer

        spec = ProposerSpec(
            kind="llm",
            provider="local" if args.local else None,
            base_url=args.base_url,
            model=args.model,
            api_key_env=args.api_key_env,
        )
        llm = make_llm_proposer(spec, args.out, cache=cache)

    results: dict = {}
    try:
        for name in args.dispatches.split(","):
            target, model = analyse(name, args.out)
            evaluator = Evaluator(model, cache)
            space = load_space(target.root.family)
            request = ProposalRequest(
                target,
                space,
                iree.host_cpu_features(),
                lambda c, t=target, e=evaluator: None if e.evaluate(t, c).status == "ok" else "fails",
            )
            default = evaluator.evaluate(target, target.root.default_config)
            heuristic = HeuristicProposer().propose(request).skeletons
            methods = {
                "random-full": ("random", (space.full_skeleton(target.root),)),
                "tpe-full": ("tpe", (space.full_skeleton(target.root),)),
                "heuristic+tpe": ("tpe", heuristic),
            }
            llm_note = ""
            if llm is not None:
                proposal = llm.propose(request)
                methods["llm+tpe"] = ("tpe", proposal.skeletons)
                llm_note = proposal.source
            results[name] = {
                "target": target.label,
                "default_ns": default.time_ns,
                "llm_source": llm_note,
                "methods": {},
            }
            for method, (sampler, skeletons) in methods.items():
                runs = []
                for seed in range(args.seeds):
                    defaults = {}
                    for sk in skeletons:
                        vals = default_values(sk, request)
                        if vals is not None:
                            defaults = {sk.name: vals}
                            break
                    outcome = tune_target(
                        target,
                        space,
                        tuple(skeletons),
                        defaults,
                        evaluator,
                        storage=storage,
                        study_name=f"{run_tag}:{name}:{method}:{seed}",
                        trials=args.budget,
                        sampler=sampler,
                        seed=seed,
                    )
                    study = optuna.load_study(study_name=outcome.study_name, storage=storage)
                    runs.append(trajectory(study))
                    print(f"{name} {method} seed {seed}: best {min(runs[-1]) / 1e6:.3f} ms", flush=True)
                results[name]["methods"][method] = runs
    finally:
        if llm is not None:
            llm.close()

    rows = []
    for name, data in results.items():
        best_any = min(min(r) for runs in data["methods"].values() for r in runs)
        for method, runs in data["methods"].items():
            speedups = [data["default_ns"] / min(r) for r in runs]
            reach = []
            for r in runs:
                hit = next((i + 1 for i, v in enumerate(r) if v <= best_any / 0.95), None)
                reach.append(hit)
            reached = [h for h in reach if h is not None]
            trials = "-" if not reached else f"{statistics.median(reached):g}"
            rows.append(
                [
                    name,
                    method,
                    f"{statistics.median(speedups):.2f}x",
                    f"{min(speedups):.2f}-{max(speedups):.2f}x",
                    f"{trials} ({len(reached)}/{len(reach)} seeds)",
                ]
            )
    table = tabulate(
        rows,
        headers=[
            "dispatch",
            "method",
            "best speed-up (median)",
            "range over seeds",
            "trials to 95% of best (median, seeds that got there)",
        ],
        tablefmt="github",
    )
    print(table)
    if llm is not None:
        stats = llm.write_records(args.out)
        print(f"LLM: {json.dumps(stats)}")
    (args.out / "proposers.md").write_text(table + "\n")
    (args.out / "proposers.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
