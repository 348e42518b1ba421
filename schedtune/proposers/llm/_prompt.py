"""The per-dispatch prompt and the JSON schema of the answer.

Only one dispatch goes into a prompt (its root op trimmed, loops, dtypes, CPU features,
IREE's default, the space's legal values, a few retrieved notes and past results): whole
models overflowed the context window of earlier attempts. The schema enumerates the legal
values per knob, so a server with schema-constrained decoding cannot produce an illegal one.
"""

from __future__ import annotations

import json

from ...dispatches import TuningTarget
from ...families import get_family
from ...knowledge import Note, PastResult
from ...spaces import KnobSpace, loop_names
from ...spec import TRANSFORM_DIALECT

MAX_SKELETONS = 3
MAX_CHOICES = 4
_OP_CHARS = 500

SYSTEM = (
    "You propose schedule skeletons for one IREE llvm-cpu dispatch. A skeleton fixes the "
    "pipeline and lists, for every tile level and loop, a few candidate tile sizes; a search "
    "then picks among them. Answer with JSON only."
)

# What the transform-dialect tier's knobs mean (spec/_transform.py), for the LLM.
TRANSFORM_DIALECT_NOTE = (
    f"Pipeline {TRANSFORM_DIALECT} is a transform-dialect codegen script of this dispatch, not an IREE "
    "pipeline: distribution = workgroup tiles of 1 to 3 parallel loops (0 elsewhere), vector_common_parallel = "
    "the register block inside them, vector_reduction = the step of each reduction loop (0 = whole); every "
    "tile must divide its loop (and the register block the workgroup tile); no loop peeling."
)


def tunable_levels(space: KnobSpace) -> list[str]:
    return [lvl for lvl in space.levels if lvl not in space.ties]


def free_knobs(target: TuningTarget, space: KnobSpace) -> dict[str, dict[str, list[int]]]:
    """Level -> loop -> legal values, for the knobs with a choice; the model answers only these.

    Fixed knobs (one legal value) are filled in by the parser: asking for them tripled the
    answer's length on convolutions and made a small model run out of tokens mid-JSON.
    """
    loops = loop_names(target.root)
    out: dict[str, dict[str, list[int]]] = {}
    for lvl in tunable_levels(space):
        knobs = {loop: space.legal_values(lvl, loop, l.bound) for loop, l in zip(loops, target.root.loops)}
        knobs = {loop: legal for loop, legal in knobs.items() if len(legal) > 1}
        if knobs:
            out[lvl] = knobs
    return out


def answer_schema(target: TuningTarget, space: KnobSpace, max_skeletons: int = MAX_SKELETONS) -> dict:
    levels = {}
    for lvl, knobs in free_knobs(target, space).items():
        props = {
            loop: {"type": "array", "items": {"type": "integer", "enum": legal}, "minItems": 1, "maxItems": MAX_CHOICES}
            for loop, legal in knobs.items()
        }
        levels[lvl] = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    skeleton = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "pipeline": {"type": "string", "enum": list(space.pipelines)},
            "loop_peeling": {
                "type": "array",
                "items": {"type": "boolean", "enum": list(space.loop_peeling)},
                "minItems": 1,
                "maxItems": 2,
            },
            "levels": {"type": "object", "properties": levels, "required": list(levels), "additionalProperties": False},
            "rationale": {"type": "string", "maxLength": 80},
        },
        "required": ["name", "pipeline", "loop_peeling", "levels"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"skeletons": {"type": "array", "items": skeleton, "minItems": 1, "maxItems": max_skeletons}},
        "required": ["skeletons"],
        "additionalProperties": False,
    }


def _op_signature(target: TuningTarget) -> str:
    """The op in one line: name, operand types and (for generic ops) indexing maps.

    The generic-form text with its body costs ~200 tokens and tells the model nothing more.
    """
    root = target.root
    *ins, out = root.operand_types or ("?",)
    text = f"{root.op_name}({', '.join(ins)}) -> {out}"
    if root.op_name == "linalg.generic" and root.matcher is not None and root.matcher.indexing_maps:
        maps = [m.removeprefix("affine_map<").removesuffix(">") for m in root.matcher.indexing_maps]
        text += f" maps {'; '.join(maps)}"
    return text if len(text) <= _OP_CHARS else text[: _OP_CHARS - 3] + "..."


def build_messages(
    target: TuningTarget,
    space: KnobSpace,
    cpu_features: str,
    notes: list[Note],
    past: list[PastResult],
    max_skeletons: int = MAX_SKELETONS,
) -> list[dict]:
    root = target.root
    family = get_family(root.family)
    loops = loop_names(root)
    loop_desc = ", ".join(f"{n}={l.bound}{'' if l.parallel else ' (reduction)'}" for n, l in zip(loops, root.loops))
    features = [f for f in ("avx512f", "avx2", "fma", "avx") if f in cpu_features.split(",")]
    width = 16 if "avx512f" in features else 8 if "avx2" in features or "avx" in features else 4
    default = root.default_config.to_json() if root.default_config else "none"
    legal = free_knobs(target, space)
    fixed = {
        lvl: {
            loop: space.legal_values(lvl, loop, l.bound)[0]
            for loop, l in zip(loops, root.loops)
            if len(space.legal_values(lvl, loop, l.bound)) == 1
        }
        for lvl in tunable_levels(space)
    }
    lines = [
        f"Op: {root.family} ({root.op_name}), element types {'/'.join(root.element_types)}.",
        *([f"About {root.family}: {family.prompt_notes}"] if family and family.prompt_notes else []),
        f"Loops: {loop_desc}.",
        f"IR: {_op_signature(target)}",
        f"CPU: x86 {' '.join(features)}; {width} f32 lanes per vector register, 16 registers.",
        f"IREE default: {json.dumps(default, separators=(',', ':'))}",
        f"Pipelines allowed: {', '.join(space.pipelines)}. loop_peeling choices: {list(space.loop_peeling)}.",
        f"Tunable values per level and loop: {json.dumps(legal, separators=(',', ':'))}",
        f"Fixed values (set for you, leave out): {json.dumps(fixed, separators=(',', ':'))}",
        f"Constraint: product of vector tiles < {root.vector_limit}; vector tile <= distribution tile.",
    ]
    if TRANSFORM_DIALECT in space.pipelines:
        lines.append(TRANSFORM_DIALECT_NOTE)
    if notes:
        lines.append("Notes: " + " ".join(f"- {n.text}" for n in notes))
    if past:
        lines.append(
            "Best configs found for similar ops: "
            + "; ".join(
                f"{p.label} {p.speedup:.1f}x {json.dumps(p.config.get('tiles', {}), separators=(',', ':'))}"
                for p in past
            )
        )
    lines.append(
        f'Return {{"skeletons": [...]}} with 1 to {max_skeletons} skeletons, each '
        '{"name", "pipeline", "loop_peeling": [bools], "levels": {level: {loop: [1-4 tile sizes]}}, '
        '"rationale" (a few words)}. Give every tunable level and loop listed above.'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def answer_items(text: str, key: str) -> tuple[list, str]:
    """The list under `key` in a JSON answer (`{"skeletons": [...]}`, or the bare list), or
    what is wrong with the answer."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], f"not valid JSON ({exc.msg} at char {exc.pos})"
    items = data.get(key) if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        return [], f'expected {{"{key}": [ ...at least one {key[:-1]}... ]}}'
    return items, ""


def repair_messages(messages: list[dict], errors: dict[str, list[str]]) -> list[dict]:
    """The original prompt plus what was wrong: the context stays bounded whatever the model wrote."""
    text = "; ".join(f"{name}: {' | '.join(errs[:3])}" for name, errs in errors.items())
    return messages[:2] + [
        {"role": "user", "content": f"A previous answer was invalid: {text[:700]}. Return a corrected JSON answer."}
    ]
