"""LLM proposer: skeletons from any OpenAI-compatible model, validated and repaired.

The model's answer is data: parsed as JSON, turned into `Skeleton`s, checked against the
family's space and by one compile of each skeleton's centre point; errors go back to the
model for a bounded number of repair rounds. Nothing it returns is executed, and any
failure (endpoint down, timeout, garbage, nothing valid) falls back to the heuristic
proposer for that dispatch with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import re
from typing import Any

from ...config import ProposerSpec
from ...knowledge import retrieve_notes, similar_results
from ...redaction import redact
from ...spaces import Skeleton, loop_bounds, loop_names
from ...store import Cache
from .._base import PipelineProposal, PipelineRequest, Proposal, ProposalRequest, Proposer, fixed_pipelines
from .._heuristic import HeuristicProposer
from ._client import LLMClient
from ._local import MODEL_ALIAS, LocalModelUnavailable, LocalServer
from ._pipeline_prompt import parse_pipelines, pipeline_messages, pipeline_schema
from ._prompt import answer_items, answer_schema, build_messages, repair_messages

log = logging.getLogger("schedtune")


@dataclasses.dataclass
class CallRecord:
    """What one dispatch's proposal cost and how valid it was (for the report)."""

    target: str
    prompt_chars: int = 0
    prompt_tokens: int = 0  # of the first call (the per-dispatch prompt)
    max_prompt_tokens: int = 0  # over repair rounds too
    completion_tokens: int = 0
    latency_s: float = 0.0
    calls: int = 0
    cached_calls: int = 0
    proposed: int = 0
    raw_valid: int = 0  # valid in the first answer
    valid_after_repair: int = 0
    repair_rounds: int = 0
    fallback: str = ""
    errors: list[str] = dataclasses.field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:30] or "s"


def parse_skeletons(text: str, request: ProposalRequest) -> tuple[list[Skeleton], dict[str, list[str]], int]:
    """(valid skeletons, errors by skeleton name, number proposed) from one answer."""
    items, problem = answer_items(text, "skeletons")
    if problem:
        return [], {"answer": [problem]}, 0
    space, root = request.space, request.target.root
    loops = loop_names(root)
    valid, errors, names = [], {}, set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors[f"skeleton {i}"] = ["must be an object"]
            continue
        name = f"llm:{_slug(item.get('name', f's{i}'))}"
        while name in names:
            name += "-b"
        names.add(name)
        try:
            levels = {
                str(lvl): {
                    str(loop): [int(v) for v in (vals if isinstance(vals, list) else [vals])]
                    for loop, vals in dict(knobs).items()
                }
                for lvl, knobs in dict(item.get("levels", {})).items()
            }
            for lvl in space.levels:  # fixed knobs are not asked for: fill them in
                if lvl in space.ties:
                    continue
                given = levels.setdefault(lvl, {})
                for loop, l in zip(loops, root.loops):
                    legal = space.legal_values(lvl, loop, l.bound)
                    if len(legal) == 1 and loop not in given:
                        given[loop] = legal
            peeling = item.get("loop_peeling", [False])
            peeling = [bool(p) for p in (peeling if isinstance(peeling, list) else [peeling])]
            skeleton = Skeleton.make(
                name,
                str(item.get("pipeline", "")),
                peeling,
                levels,
                dict(space.ties),
                str(item.get("rationale", ""))[:200],
            )
        except (TypeError, ValueError, AttributeError) as exc:
            errors[name] = [f"malformed skeleton: {exc}"]
            continue
        problems = space.check_skeleton(skeleton, root)
        if not problems and request.check_config is not None:
            point = space.feasible_point(skeleton, root)
            failure = request.check_config(skeleton.config(point, loops))
            if failure:
                problems = [f"its centre point fails in iree-compile: {failure.splitlines()[0][:300]}"]
        if problems:
            errors[name] = problems
        else:
            valid.append(skeleton)
    return valid, errors, len(items)


class LLMProposer(Proposer):
    def __init__(
        self,
        client: LLMClient | None,
        *,
        storage=None,
        repair_rounds: int = 2,
        max_skeletons: int = 3,
        unavailable: str = "",
        server: LocalServer | None = None,
        seed: int = 0,
    ) -> None:
        self.client = client
        self.seed = seed  # added to every call's sampling seed (repeated measurements)
        self.storage = storage
        self.repair_rounds = repair_rounds
        self.max_skeletons = max_skeletons
        self.unavailable = unavailable
        self.server = server
        self.records: list[CallRecord] = []
        self.pipeline_records: list[CallRecord] = []
        self._heuristic = HeuristicProposer()

    def propose(self, request: ProposalRequest) -> Proposal:
        record = CallRecord(target=request.target.label)
        self.records.append(record)
        fallback = self._heuristic.propose(request)
        if self.client is None:
            record.fallback = self.unavailable or "no LLM client"
            return Proposal(fallback.skeletons, "llm->heuristic", (record.fallback,))
        try:
            skeletons = self._ask(request, record)
        except Exception as exc:  # the LLM must never fail the job: endpoint down, timeout, garbage
            record.fallback = redact(f"{type(exc).__name__}: {str(exc)}")[:200]
            log.warning(
                "LLM proposer failed for %s (%s); using the heuristic proposer", request.target.label, record.fallback
            )
            return Proposal(fallback.skeletons, "llm->heuristic", (record.fallback,))
        # Keep IREE's default neighbourhood too: it carries the baseline trial.
        baseline = [s for s in fallback.skeletons if s.name == "near-default"]
        return Proposal(tuple(baseline + skeletons), "llm")

    def _ask(self, request: ProposalRequest, record: CallRecord) -> list[Skeleton]:
        target, space = request.target, request.space
        terms = [
            target.root.family,
            target.root.op_name.split(".")[-1],
            *space.pipelines,
            *(space.levels.keys()),
            "avx2" if "avx2" in request.cpu_features else "sse",
        ]
        notes = retrieve_notes(terms, k=2, exclude_tags={"flags"})  # flags are model-level, not per dispatch
        past = []
        if self.storage is not None:
            loops = loop_bounds(target.root)
            past = similar_results(self.storage, target.root.family, loops, k=2)
        messages = build_messages(target, space, request.cpu_features, notes, past, self.max_skeletons)
        record.prompt_chars = sum(len(m["content"]) for m in messages)
        schema = answer_schema(target, space, self.max_skeletons)
        valid = self._repaired(
            messages, schema, record, lambda text: parse_skeletons(text, request), lambda s: s.name, []
        )
        if not valid:
            raise ValueError("no valid skeleton after repair: " + "; ".join(record.errors[:2]))
        return valid[: self.max_skeletons]

    def propose_pipelines(self, request: PipelineRequest) -> PipelineProposal:
        """Today's fixed sets (the baselines), then the LLM's pipelines, validated and repaired."""
        fixed = fixed_pipelines(request)
        record = CallRecord(target="model pipelines")
        self.pipeline_records.append(record)
        if self.client is None:
            record.fallback = self.unavailable or "no LLM client"
            return PipelineProposal(tuple(fixed), (record.fallback,))
        messages = pipeline_messages(request, self.max_skeletons)
        record.prompt_chars = sum(len(m["content"]) for m in messages)
        schema = pipeline_schema(request, self.max_skeletons)
        valid: list = []
        try:
            self._repaired(messages, schema, record, lambda text: parse_pipelines(text, request), lambda p: p, valid)
        except Exception as exc:  # the LLM must never fail the job
            record.fallback = redact(f"{type(exc).__name__}: {str(exc)}")[:200]
            log.warning("LLM pipeline proposal failed (%s); today's fixed sets only", record.fallback)
        record.valid_after_repair = len(valid)
        known = {p for p, _ in fixed}
        return PipelineProposal(tuple(fixed + [(p, "llm") for p in valid if p not in known]))

    def _repaired(self, messages, schema, record: CallRecord, parse, identity, valid: list) -> list:
        """Ask, parse, and feed the errors back for up to `repair_rounds` more rounds; every
        call's costs and validity go into `record`. The valid items (distinct by `identity`)
        are added to `valid` as they come, so a later round that fails keeps the earlier
        ones; stops once there are `max_skeletons` of them or no errors."""
        for round_ in range(1 + self.repair_rounds):
            completion = self.client.complete(messages, schema, seed=self.seed + round_)
            record.calls += 1
            record.cached_calls += int(completion.cached)
            if round_ == 0:
                record.prompt_tokens = completion.prompt_tokens
            record.max_prompt_tokens = max(record.max_prompt_tokens, completion.prompt_tokens)
            record.completion_tokens += completion.completion_tokens
            record.latency_s += completion.latency_s
            new, errors, proposed = parse(completion.text)
            if round_ == 0:
                record.proposed = proposed
                record.raw_valid = len(new)
            else:
                record.repair_rounds = round_
            record.errors += [f"{k}: {v[0]}" for k, v in errors.items()][:4]
            taken = {identity(v) for v in valid}
            valid.extend(v for v in new if identity(v) not in taken)
            if not errors or len(valid) >= self.max_skeletons:
                break
            messages = repair_messages(messages, errors)
        record.valid_after_repair = len(valid)
        return valid

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def write_records(self, folder: pathlib.Path) -> dict[str, Any]:
        path = folder / "llm_calls.jsonl"
        path.write_text(
            redact("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in [*self.pipeline_records, *self.records]))
        )
        pipelines = [r for r in self.pipeline_records if r.calls]
        calls = [r for r in self.records if r.calls]
        return {
            "model": self.client.model if self.client else None,
            "dispatches": len(self.records),
            "fallbacks": sum(1 for r in self.records if r.fallback),
            "max_prompt_tokens": max((r.max_prompt_tokens for r in calls), default=0),
            "proposed": sum(r.proposed for r in calls),
            "raw_valid": sum(r.raw_valid for r in calls),
            "valid_after_repair": sum(r.valid_after_repair for r in calls),
            "latency_s": sum(r.latency_s for r in calls),
            "calls_file": str(path),
            "pipelines": {
                "proposed": sum(r.proposed for r in pipelines),
                "raw_valid": sum(r.raw_valid for r in pipelines),
                "valid_after_repair": sum(r.valid_after_repair for r in pipelines),
                "repair_rounds": sum(r.repair_rounds for r in pipelines),
                "fallbacks": sum(1 for r in self.pipeline_records if r.fallback),
                "errors": [e for r in self.pipeline_records for e in r.errors][:8],
            },
        }


def make_llm_proposer(
    spec: ProposerSpec, report_dir: pathlib.Path, cache: Cache | None = None, storage=None
) -> LLMProposer:
    """An LLM proposer for the job; if the model cannot be reached it still returns one that falls back."""
    server = None
    try:
        if spec.provider == "local":
            server = LocalServer(log_path=report_dir / "local_llm.log")
            # Prompts stay under ~900 tokens; 1000 for the answer still fits the 2048 window.
            base_url, model, fmt, max_tokens = server.base_url, spec.model or MODEL_ALIAS, "json_object_schema", 1000
        else:
            base_url, model, fmt, max_tokens = spec.base_url, spec.model or "gpt-4o-mini", "auto", 1500
        client = LLMClient(
            base_url,
            model,
            spec.api_key_env,
            timeout_s=spec.timeout_s,
            cache=cache,
            response_format=fmt,
            max_tokens=max_tokens,
        )
    except (LocalModelUnavailable, OSError) as exc:
        log.warning("LLM unavailable (%s); the heuristic proposer is used", exc)
        return LLMProposer(None, unavailable=redact(str(exc)))
    return LLMProposer(
        client, storage=storage, repair_rounds=spec.repair_rounds, max_skeletons=spec.max_skeletons, server=server
    )


__all__ = ["CallRecord", "LLMProposer", "make_llm_proposer", "parse_skeletons"]
