"""LLM client logic against a scripted fake endpoint: schema forms, repair, fallback, key hygiene."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys

import pytest

from schedtune.dispatches import Loop, RootOp, TuningTarget
from schedtune.proposers import ProposalRequest
from schedtune.proposers.llm import LLMProposer, parse_skeletons
from schedtune.proposers.llm._client import LLMClient
from schedtune.proposers.llm._prompt import answer_schema, build_messages
from schedtune.spaces import load_space
from schedtune.spec import CompilationConfig, OpMatcher
from schedtune.store import Cache

from .conftest import DATA
from .fake_openai import FakeOpenAI


@pytest.fixture
def target() -> TuningTarget:
    loops = (Loop("m", 64, True), Loop("n", 96, True), Loop("k", 128, False))
    matcher = OpMatcher("linalg.matmul", "contraction", "f32", "f32", "f32", ((), (64,), (96,), (128,)))
    default = CompilationConfig.make(
        "DoubleTilingExpert",
        {
            "distribution": [8, 48, 0],
            "cache_parallel": [8, 48, 0],
            "vector_common_parallel": [8, 8, 0],
            "vector_reduction": [0, 0, 8],
        },
        True,
    )
    root = RootOp("linalg.matmul", "matmul", loops, ("f32", "f32", "f32"), matcher, default, "%0 = linalg.matmul ...")
    return TuningTarget(root, ("d0",), 1e6, 1.0)


def _answer(**overrides) -> str:
    sk = {
        "name": "block",
        "pipeline": "DoubleTilingExpert",
        "loop_peeling": [True],
        "levels": {
            "distribution": {"m": [32, 64], "n": [32], "k": [0]},
            "vector_common_parallel": {"m": [4, 6], "n": [16], "k": [0]},
            "vector_reduction": {"m": [0], "n": [0], "k": [1, 2]},
        },
        "rationale": "AVX2 register block",
    }
    sk.update(overrides)
    return json.dumps({"skeletons": [sk]})


def _proposer(url, tmp_path, **kw):
    client = LLMClient(
        url,
        "fake-model",
        "SCHEDTUNE_TEST_KEY",
        timeout_s=5,
        cache=Cache(f"sqlite:///{tmp_path / 'c.db'}"),
        response_format=kw.pop("fmt", "auto"),
    )
    return LLMProposer(client, repair_rounds=kw.pop("repair_rounds", 2))


def test_schema_enumerates_legal_values_and_prompt_is_small(target):
    space = load_space("matmul")
    schema = answer_schema(target, space)
    sk = schema["properties"]["skeletons"]["items"]
    assert sk["properties"]["pipeline"]["enum"] == ["DoubleTilingExpert"]
    m_vec = sk["properties"]["levels"]["properties"]["vector_common_parallel"]["properties"]["m"]["items"]["enum"]
    assert m_vec == [1, 2, 4, 6, 8, 16]
    messages = build_messages(target, space, "avx,avx2,fma", [], [])
    assert sum(len(m["content"]) for m in messages) < 3000  # far below a 2048-token window


def test_falls_back_through_response_formats(target, tmp_path):
    with FakeOpenAI([("status", 500), _answer()]) as fake:
        proposal = _proposer(fake.base_url, tmp_path).propose(ProposalRequest(target, load_space("matmul")))
    assert proposal.source == "llm"
    assert fake.requests[0]["response_format"]["type"] == "json_schema"
    assert fake.requests[1]["response_format"] == {
        "type": "json_object",
        "schema": fake.requests[1]["response_format"]["schema"],
    }
    assert [s.name for s in proposal.skeletons] == ["near-default", "llm:block"]


def test_repair_round_feeds_back_the_validation_error(target, tmp_path):
    bad = _answer(
        levels={
            "distribution": {"m": [32], "n": [7000], "k": [0]},
            "vector_common_parallel": {"m": [4], "n": [16], "k": [0]},
        }
    )
    with FakeOpenAI([bad, _answer()]) as fake:
        proposer = _proposer(fake.base_url, tmp_path, fmt="json_object_schema")
        proposal = proposer.propose(ProposalRequest(target, load_space("matmul")))
    assert proposal.source == "llm"
    record = proposer.records[0]
    assert (record.raw_valid, record.valid_after_repair, record.repair_rounds) == (0, 1, 1)
    feedback = fake.requests[1]["messages"][-1]["content"]
    assert "distribution.n: [7000] not allowed" in feedback and "vector_reduction" in feedback


def test_centre_point_compile_error_goes_back_to_the_model(target, tmp_path):
    calls = []

    def check(config):
        calls.append(config)
        return "error: One or more operations with large vector sizes" if len(calls) == 1 else None

    with FakeOpenAI([_answer(), _answer(name="smaller")]) as fake:
        proposer = _proposer(fake.base_url, tmp_path, fmt="json_object_schema")
        proposal = proposer.propose(ProposalRequest(target, load_space("matmul"), check_config=check))
    assert "centre point fails in iree-compile" in fake.requests[1]["messages"][-1]["content"]
    assert [s.name for s in proposal.skeletons] == ["near-default", "llm:smaller"]


def test_garbage_then_heuristic_fallback(target, tmp_path, caplog):
    with FakeOpenAI(["not json", "still not json", '{"skeletons": []}']) as fake:
        proposer = _proposer(fake.base_url, tmp_path, fmt="json_object_schema")
        with caplog.at_level(logging.WARNING, logger="schedtune"):
            proposal = proposer.propose(ProposalRequest(target, load_space("matmul")))
    assert proposal.source == "llm->heuristic"
    assert [s.name for s in proposal.skeletons] == ["near-default", "lib:avx2-register-block", "space-wide"]
    assert "using the heuristic proposer" in caplog.text
    assert len(fake.requests) == 3  # first answer + 2 bounded repair rounds


def test_endpoint_down_falls_back(target, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    proposer = _proposer(f"http://127.0.0.1:{port}/v1", tmp_path)
    proposal = proposer.propose(ProposalRequest(target, load_space("matmul")))
    assert proposal.source == "llm->heuristic"
    assert "APIConnectionError" in proposer.records[0].fallback


def test_responses_are_cached_by_prompt(target, tmp_path):
    with FakeOpenAI([_answer()]) as fake:
        _proposer(fake.base_url, tmp_path, fmt="json_object_schema").propose(
            ProposalRequest(target, load_space("matmul"))
        )
        again = _proposer(fake.base_url, tmp_path, fmt="json_object_schema")
        proposal = again.propose(ProposalRequest(target, load_space("matmul")))
    assert len(fake.requests) == 1
    assert again.records[0].cached_calls == 1 and proposal.source == "llm"


def test_parse_rejects_unknown_levels_and_loops(target):
    text = _answer(levels={"distribution": {"m": [32], "q": [4]}, "warp": {"m": [1]}})
    valid, errors, proposed = parse_skeletons(text, ProposalRequest(target, load_space("matmul")))
    assert not valid and proposed == 1
    joined = " ".join(errors["llm:block"])
    assert "unknown loop 'q'" in joined and "'warp' is not tunable" in joined


def test_api_key_used_but_never_written(tmp_path, monkeypatch):
    secret = "sk-test-DO-NOT-LEAK-4242"
    monkeypatch.setenv("SCHEDTUNE_TEST_KEY", secret)
    config = tmp_path / "job.yaml"
    with FakeOpenAI([_answer()] * 4) as fake:
        config.write_text(
            f"name: llmjob\noutput: {tmp_path / 'reports'}\n"
            f"model: {{format: mlir, path: {DATA / 'matmul.mlir'}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
            "budget: {trials_per_dispatch: 3, confirm_rounds: 2}\n"
            "search: {sampler: random, seed: 0, tune_model_flags: false}\n"
            f"proposer: {{kind: llm, base_url: '{fake.base_url}', model: fake, api_key_env: SCHEDTUNE_TEST_KEY}}\n"
        )
        proc = subprocess.run(
            [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet", "-v"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr
    assert any({k.lower(): v for k, v in h.items()}.get("authorization") == f"Bearer {secret}" for h in fake.headers)
    assert secret not in proc.stdout + proc.stderr
    for path in (tmp_path / "reports").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    summary = json.loads((tmp_path / "reports" / "llmjob" / "summary.json").read_text())
    assert summary["llm"]["dispatches"] == 1 and summary["llm"]["fallbacks"] == 0
    assert "llm:block" in summary["dispatches"][0]["skeletons"]


def test_a_key_echoed_by_a_rejecting_server_is_never_written(tmp_path, monkeypatch):
    """OpenAI's own 401 text quotes the key: it reaches no file of the report and not stderr."""
    secret = "sk-proj-ECHOED-by-the-server-9876"
    monkeypatch.setenv("SCHEDTUNE_TEST_KEY", secret)
    config = tmp_path / "job.yaml"
    refusal = ("status", 401, f"Incorrect API key provided: {secret}. You can find your API key at ...")
    with FakeOpenAI([refusal] * 12) as fake:
        config.write_text(
            f"name: llmjob\noutput: {tmp_path / 'reports'}\n"
            f"model: {{format: mlir, path: {DATA / 'matmul.mlir'}, entry: main, inputs: [64x128xf32, 128x96xf32]}}\n"
            "budget: {trials_per_dispatch: 2, confirm_rounds: 2}\n"
            "search: {sampler: random, seed: 0, tune_model_flags: false}\n"
            f"proposer: {{kind: llm, base_url: 'http://user:pw-in-url@127.0.0.1:{fake.base_url.split(':')[-1]}', "
            "model: fake, api_key_env: SCHEDTUNE_TEST_KEY}\n"
        )
        proc = subprocess.run(
            [sys.executable, "-m", "schedtune.cli", "--config", str(config), "--quiet", "-v"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr
    assert fake.requests, "the server was asked"
    assert "heuristic proposals used" in proc.stderr  # the refusal is reported...
    for text in (proc.stdout, proc.stderr):
        assert secret not in text and "pw-in-url" not in text  # ...without the key
    files = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert any(p.name == "llm_calls.jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        assert secret.encode() not in data and b"pw-in-url" not in data, path


def test_pipeline_repair_round_feeds_back_the_error(tmp_path):
    from schedtune.pipelines import load_pipeline_space, pipeline_error
    from schedtune.proposers import PipelineRequest
    from schedtune.spaces import flag_candidates

    space = load_pipeline_space().for_families({"matmul"})
    fixed, _ = flag_candidates({"matmul"})
    request = PipelineRequest(space, tuple(fixed), {"matmul": 0.9}, check=lambda p: pipeline_error(space, p))
    bad = json.dumps(
        {
            "pipelines": [
                {"passes": [{"name": "iree-preprocessing-pad-linalg-ops", "options": {"pad-size": "7"}}], "flags": {}}
            ]
        }
    )
    good = json.dumps(
        {
            "pipelines": [
                {
                    "passes": [{"name": "iree-preprocessing-transpose-matmul-pass", "options": {"input": "rhs"}}],
                    "flags": {"data-tiling": "on"},
                    "rationale": "contiguous rhs",
                }
            ]
        }
    )
    with FakeOpenAI([bad, good]) as fake:
        proposer = _proposer(fake.base_url, tmp_path, fmt="json_object_schema")
        proposal = proposer.propose_pipelines(request)
    record = proposer.pipeline_records[0]
    assert (record.raw_valid, record.valid_after_repair, record.repair_rounds) == (0, 1, 1)
    assert "pad-size=7}: value not in" in fake.requests[1]["messages"][-1]["content"]
    schema = fake.requests[0]["response_format"]["schema"]
    steps = schema["properties"]["pipelines"]["items"]["properties"]["passes"]["items"]["anyOf"]
    assert [s["properties"]["name"]["enum"] for s in steps] == [[p.name] for p in space.passes]
    for step, spec in zip(steps, space.passes):  # each pass carries its own options only
        options = step["properties"].get("options", {}).get("properties", {})
        assert set(options) == {o for o, _ in spec.options}
    llm = [p for p, source in proposal.pipelines if source == "llm"]
    assert [p.describe() for p in llm] == ["preprocessing-transpose-matmul-pass{input=rhs} + data-tiling=on"]
    assert [s for _, s in proposal.pipelines][: len(fixed)] == ["heuristic"] * len(fixed)
