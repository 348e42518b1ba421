"""The model-level prompt (which passes, in which order, under which flags) and its schema.

The model goes in summarised: op families with their share of the time and the hottest
dispatches, never its IR. The schema enumerates the legal passes, options and flag choices.
"""

from __future__ import annotations

from typing import Any

from ...pipelines import NO_OPTION, Pipeline, PipelineError
from .._base import PipelineRequest
from ._prompt import answer_items

MAX_PIPELINES = 3
_HOT = 6

SYSTEM = (
    "You choose IREE compiler preprocessing passes, their order and global flags for one model "
    "on an x86 CPU. Each pipeline you give is compiled, checked and timed. Answer with JSON only."
)


def pipeline_schema(request: PipelineRequest, max_pipelines: int = MAX_PIPELINES) -> dict[str, Any]:
    space = request.space
    # One step schema per pass, with that pass's own options only: a single schema for all
    # passes let a small model hang one pass's option on another.
    steps = []
    for spec in space.passes:
        options = {
            option: {"type": "string", "enum": [v for v in values if v != NO_OPTION]} for option, values in spec.options
        }
        properties: dict[str, Any] = {"name": {"type": "string", "enum": [spec.name]}}
        if options:
            properties["options"] = {"type": "object", "properties": options, "additionalProperties": False}
        steps.append({"type": "object", "properties": properties, "required": ["name"], "additionalProperties": False})
    step = {"anyOf": steps} if len(steps) > 1 else (steps[0] if steps else {"type": "object"})
    flags = {g.name: {"type": "string", "enum": [c for c, _ in g.choices]} for g in space.groups}
    item = {
        "type": "object",
        "properties": {
            "passes": {"type": "array", "items": step, "maxItems": space.max_length},
            "flags": {"type": "object", "properties": flags, "additionalProperties": False},
            "rationale": {"type": "string", "maxLength": 120},
        },
        "required": ["passes", "flags"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"pipelines": {"type": "array", "items": item, "minItems": 1, "maxItems": max_pipelines}},
        "required": ["pipelines"],
        "additionalProperties": False,
    }


def pipeline_messages(request: PipelineRequest, max_pipelines: int = MAX_PIPELINES) -> list[dict]:
    space = request.space
    shares = ", ".join(
        f"{family} {100 * share:.0f}%" for family, share in sorted(request.shares.items(), key=lambda kv: -kv[1])
    )
    hot = "; ".join(f"{label} {100 * share:.0f}%" for label, share in request.hot_dispatches[:_HOT])
    passes = []
    for spec in space.passes:
        opts = ", ".join(f"{o}: {[v for v in vals if v != NO_OPTION]}" for o, vals in spec.options)
        passes.append(f"- {spec.name}{f' (options {opts}; each optional)' if opts else ''}: {spec.note}")
    groups = "; ".join(f"{g.name}: {', '.join(c for c, _ in g.choices)}" for g in space.groups)
    lines = [
        f"Model time by op family (IREE default build): {shares or 'unknown'}.",
        f"Hottest dispatches: {hot or 'unknown'}.",
        f"Passes you may use, in any order, at most {space.max_length}, each at most once:",
        *passes,
        f"Global flag groups (one choice each; off is the default): {groups or 'none'}.",
    ]
    if request.past:
        tried = "; ".join(
            f"{desc}: {f'{ratio:.2f}x of default time' if ratio is not None else status}"
            for desc, status, ratio in request.past[:8]
        )
        lines.append(f"Already measured (lower is faster): {tried}.")
    lines.append(
        f'Return {{"pipelines": [...]}} with 1 to {max_pipelines} new pipelines, each '
        '{"passes": [{"name", "options": {...}}], "flags": {group: choice}, "rationale" (a few words)}.'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def parse_pipelines(text: str, request: PipelineRequest) -> tuple[list[Pipeline], dict[str, list[str]], int]:
    """(valid pipelines, errors by pipeline, number proposed) from one answer."""
    items, problem = answer_items(text, "pipelines")
    if problem:
        return [], {"answer": [problem]}, 0
    valid, errors = [], {}
    for i, item in enumerate(items):
        label = f"pipeline {i}"
        try:
            pipeline = request.space.completed(Pipeline.from_json(item))
        except (PipelineError, KeyError, TypeError) as exc:
            errors[label] = [f"malformed: {exc}"]
            continue
        problem = request.space.problems(pipeline)
        if not problem and request.check is not None:
            failure = request.check(pipeline)
            problem = [failure] if failure else []
        if problem:
            errors[f"{label} ({pipeline.describe()})"] = problem
        elif pipeline not in valid:
            valid.append(pipeline)
    return valid, errors, len(items)
