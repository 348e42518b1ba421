"""The real LLM path: llama.cpp's server with SmolLM2-135M, started by the test, answering
real proposal requests that pass validation (after repair if needed).

Installed by the README's test command (scripts/setup-local-llm); missing means a broken
setup, so it fails rather than skips.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from schedtune import iree
from schedtune.builds import ModelContext
from schedtune.dispatches import TuningTarget, read_configured_executables
from schedtune.evaluation import Evaluator
from schedtune.proposers import ProposalRequest
from schedtune.proposers.llm import LLMProposer
from schedtune.proposers.llm._client import LLMClient
from schedtune.proposers.llm._local import MODEL_ALIAS, LocalServer
from schedtune.spaces import load_space
from schedtune.store import Cache

from .conftest import DATA, check_exported_spec

FLAGS = iree.target_flags("host")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("llm") / "server.log"
    with LocalServer(log_path=log) as srv:
        yield srv


def test_local_model_proposes_valid_skeletons(server, tmp_path):
    built = iree.compile_model(DATA / "matmul.mlir", tmp_path / "d.vmfb", FLAGS, configs_dir=tmp_path / "cfg")
    assert built.ok
    ((name, dispatch),) = [
        (n, d) for n, d in read_configured_executables(tmp_path / "cfg").items() if d.root and d.root.family == "matmul"
    ]
    target = TuningTarget(dispatch.root, (name,), 1.0, 1.0)
    cache = Cache(f"sqlite:///{tmp_path / 'c.db'}")
    evaluator = Evaluator(
        ModelContext(
            DATA / "matmul.mlir",
            "main",
            iree.save_inputs(("64x128xf32", "128x96xf32"), tmp_path / "in", 0),
            FLAGS,
            tmp_path / "w",
        ),
        cache,
    )

    def check(config):
        result = evaluator.evaluate(target, config)
        return None if result.status == "ok" else f"{result.status}: {result.error}"

    client = LLMClient(
        server.base_url, MODEL_ALIAS, None, timeout_s=120, cache=cache, response_format="json_object_schema"
    )
    proposer = LLMProposer(client, repair_rounds=2)
    proposal = proposer.propose(ProposalRequest(target, load_space("matmul"), iree.host_cpu_features(), check))
    record = proposer.records[0]
    assert record.calls >= 1 and record.prompt_tokens > 0
    assert record.prompt_tokens < 1400  # leaves room for the answer in a 2048-token window
    assert proposal.source == "llm", record.fallback
    llm_skeletons = [s for s in proposal.skeletons if s.name.startswith("llm:")]
    assert llm_skeletons and record.valid_after_repair == len(llm_skeletons)
    space = load_space("matmul")
    for sk in llm_skeletons:
        assert space.check_skeleton(sk, target.root) == []


def test_tune_with_the_local_model_end_to_end(tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: llm_local\noutput: {tmp_path / 'reports'}\n"
        f"model: {{format: mlir, path: {DATA / 'matmul.mlir'}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
        "budget: {trials_per_dispatch: 4, confirm_rounds: 2}\n"
        "search: {sampler: tpe, seed: 0, tune_model_flags: false}\n"
        "proposer: {kind: llm, provider: local}\n"
    )
    servers_before = _servers()
    proc = subprocess.run(
        [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "reports" / "llm_local"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["llm"]["model"] == MODEL_ALIAS
    assert summary["llm"]["dispatches"] == 1
    assert summary["llm"]["fallbacks"] == 0 and summary["proposer_fallbacks"] == {}  # the LLM really proposed
    assert "heuristic proposals used" not in proc.stderr
    assert summary["llm"]["valid_after_repair"] >= 1
    check_exported_spec(report)
    assert (report / "llm_calls.jsonl").read_text().strip()
    assert _servers() == servers_before  # the job's server was stopped with the job


def _servers() -> int:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sum(1 for line in ps.splitlines() if "llama_cpp.server" in line)


def test_local_model_proposes_pipelines(server, tmp_path):
    """The model-level question to the real model: every pipeline it returns passed the
    space and iree-opt (after repair if needed); today's fixed sets come first."""
    from schedtune.pipelines import load_pipeline_space, pipeline_error
    from schedtune.proposers import PipelineRequest
    from schedtune.spaces import flag_candidates

    families = {"conv2d", "matmul"}
    space = load_pipeline_space().for_families(families)
    fixed, _ = flag_candidates(families)
    request = PipelineRequest(
        space,
        tuple(fixed),
        {"conv2d": 0.8, "matmul": 0.05, "other": 0.15},
        (("main$async_dispatch_1_conv_8x64x32x32x32x3x3_f32", 0.5),),
        check=lambda p: pipeline_error(space, p),
    )
    client = LLMClient(
        server.base_url,
        MODEL_ALIAS,
        None,
        timeout_s=120,
        cache=Cache(f"sqlite:///{tmp_path / 'c.db'}"),
        response_format="json_object_schema",
        max_tokens=1000,
    )
    proposer = LLMProposer(client, repair_rounds=2)
    proposal = proposer.propose_pipelines(request)
    record = proposer.pipeline_records[0]
    assert record.calls >= 1 and record.prompt_tokens > 0 and not record.fallback
    assert record.prompt_tokens < 1400
    sources = [s for _, s in proposal.pipelines]
    assert sources[: len(fixed)] == ["heuristic"] * len(fixed)
    assert record.valid_after_repair == sources.count("llm") or record.valid_after_repair > sources.count("llm")
    for pipeline, source in proposal.pipelines:
        if source == "llm":
            assert pipeline_error(space, pipeline) is None
    stats = proposer.write_records(tmp_path)["pipelines"]
    assert stats["proposed"] >= stats["raw_valid"] and stats["valid_after_repair"] >= stats["raw_valid"]
