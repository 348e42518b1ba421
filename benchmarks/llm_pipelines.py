"""How often an LLM's model-level pipelines are valid, before and after repair.

Per config, the job's default build is analysed (cached in `--output`, so point it at the
folder of an earlier `benchmarks/pipelines.py` run to skip the builds) and the LLM is asked
for pipelines once per seed, exactly as `tune` asks it (prompt, schema, the space and
iree-opt as validation, bounded repair rounds). Nothing is compiled or timed.

    python benchmarks/llm_pipelines.py --local --configs configs/cnn.yaml configs/gpt2.yaml \
        --output /tmp/pipes_suite --seeds 0 1 2
    python benchmarks/llm_pipelines.py --base-url URL --model NAME --api-key-env VAR --configs ...
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from schedtune import job as stages  # noqa: E402
from schedtune.config import load_config  # noqa: E402
from schedtune.dispatches import analyze_model  # noqa: E402
from schedtune.pipelines import load_pipeline_space, pipeline_error  # noqa: E402
from schedtune.proposers import PipelineRequest  # noqa: E402
from schedtune.proposers.llm import LLMProposer  # noqa: E402
from schedtune.proposers.llm._client import LLMClient  # noqa: E402
from schedtune.proposers.llm._local import MODEL_ALIAS, LocalServer  # noqa: E402
from schedtune.spaces import flag_candidates  # noqa: E402
from schedtune.store import Cache  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--local", action="store_true", help="the embedded SmolLM2 server")
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    parser.add_argument("--api-key-env")
    parser.add_argument("--repair-rounds", type=int, default=2)
    args = parser.parse_args()
    out = pathlib.Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    server = LocalServer(log_path=out / "llm_server.log") if args.local else None
    base_url = server.base_url if server else args.base_url
    model = MODEL_ALIAS if server else args.model
    fmt, max_tokens = ("json_object_schema", 1000) if server else ("auto", 1500)
    cache = Cache(f"sqlite:///{out / 'llm_pipelines.db'}")
    totals: collections.Counter = collections.Counter()
    rows = []
    try:
        for config in args.configs:
            job = load_config(pathlib.Path(config).resolve(), output_override=str(out))
            ctx = stages._prepare(job, None, time.monotonic())
            analysis = analyze_model(ctx.base)
            space = load_pipeline_space().for_families(analysis.families)
            fixed, _ = flag_candidates(analysis.families)
            request = PipelineRequest(
                space,
                tuple(fixed),
                analysis.family_shares,
                tuple(analysis.hottest),
                check=lambda p, space=space: pipeline_error(space, p),
            )
            for seed in args.seeds:
                client = LLMClient(
                    base_url,
                    model,
                    args.api_key_env,
                    timeout_s=180,
                    cache=cache,
                    response_format=fmt,
                    max_tokens=max_tokens,
                )
                proposer = LLMProposer(client, repair_rounds=args.repair_rounds, seed=10 * seed)
                proposal = proposer.propose_pipelines(request)
                record = proposer.pipeline_records[0]
                llm = [p.describe() for p, source in proposal.pipelines if source == "llm"]
                row = {
                    "job": job.name,
                    "seed": seed,
                    "proposed": record.proposed,
                    "raw_valid": record.raw_valid,
                    "valid_after_repair": record.valid_after_repair,
                    "repair_rounds": record.repair_rounds,
                    "calls": record.calls,
                    "prompt_tokens": record.prompt_tokens,
                    "latency_s": round(record.latency_s, 1),
                    "fallback": record.fallback,
                    "errors": record.errors,
                    "pipelines": llm,
                }
                rows.append(row)
                for key in ("proposed", "raw_valid", "valid_after_repair", "calls"):
                    totals[key] += row[key]
                print(
                    f"{job.name} seed {seed}: proposed {record.proposed}, valid {record.raw_valid} at once, "
                    f"{record.valid_after_repair} after {record.repair_rounds} repair round(s); {llm}",
                    flush=True,
                )
    finally:
        if server:
            server.stop()
    first = totals["raw_valid"] / totals["proposed"] if totals["proposed"] else 0.0
    print(
        f"total: {totals['proposed']} pipelines proposed in first answers, {totals['raw_valid']} valid "
        f"({100 * first:.0f}%); {totals['valid_after_repair']} valid after repair; {totals['calls']} calls"
    )
    (out / "llm_pipelines.json").write_text(json.dumps({"rows": rows, "totals": dict(totals)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
