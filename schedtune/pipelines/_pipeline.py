"""A model-level pipeline as data: an ordered list of preprocessing passes (with options)
plus one choice per global flag group, and its textual form for iree-compile."""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
from typing import Any

from ..errors import SchedtuneError

ANCHOR = "util.func"  # every preprocessing pass of the space runs on functions
PIPELINE_FLAG = "--iree-preprocessing-pass-pipeline="
INTERPRETER = "iree-preprocessing-transform-interpreter"  # runs a transform-dialect script
SCRIPT_OPTION = "transform-spec-path"  # the interpreter's option naming the script file


class PipelineError(SchedtuneError):
    """A pipeline text that cannot be read as a list of passes."""


@dataclasses.dataclass(frozen=True)
class PassStep:
    name: str
    options: tuple[tuple[str, str], ...] = ()  # (option, value), in the order given

    def render(self) -> str:
        if not self.options:
            return self.name
        return self.name + "{" + " ".join(f"{k}={v}" for k, v in self.options) + "}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PassStep:
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise PipelineError(f"options of {data.get('name')!r} must be an object")
        return cls(str(data["name"]), tuple((str(k), _value_text(v)) for k, v in options.items()))


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """What one model-level build is compiled with, beyond the target flags."""

    passes: tuple[PassStep, ...] = ()
    choices: tuple[tuple[str, str], ...] = ()  # (flag group, choice) for every group not "off"

    def __post_init__(self) -> None:
        # Flag groups have no order: one canonical form, so equal pipelines compare equal
        # whichever way they were built (sampled, read back from JSON, proposed).
        object.__setattr__(self, "choices", tuple(sorted(self.choices)))

    def text(self) -> str | None:
        """The textual pass pipeline, or None when there is no pass."""
        if not self.passes:
            return None
        return f"builtin.module({ANCHOR}({','.join(p.render() for p in self.passes)}))"

    def describe(self) -> str:
        parts = [" > ".join(p.render().removeprefix("iree-") for p in self.passes)] if self.passes else []
        parts += [f"{group}={choice}" for group, choice in self.choices]
        return " + ".join(parts) or "IREE's default"

    def to_json(self) -> dict[str, Any]:
        return {"passes": [p.to_json() for p in self.passes], "flags": dict(self.choices)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pipeline:
        if not isinstance(data, dict):
            raise PipelineError("a pipeline must be an object with passes and flags")
        passes = data.get("passes") or []
        flags = data.get("flags") or {}
        if not isinstance(passes, list) or not isinstance(flags, dict):
            raise PipelineError("passes must be a list and flags an object")
        steps = []
        for item in passes:
            if isinstance(item, str):
                steps.append(PassStep(item))
            elif isinstance(item, dict) and "name" in item:
                steps.append(PassStep.from_json(item))
            else:
                raise PipelineError(f"a pass must be a name or {{name, options}}, got {item!r}")
        return cls(tuple(steps), tuple((str(g), str(c)) for g, c in flags.items() if str(c) != "off"))


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside braces and parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
            if depth < 0:
                raise PipelineError(f"unbalanced brackets in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth:
        raise PipelineError(f"unbalanced brackets in {text!r}")
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def parse_passes(text: str) -> tuple[PassStep, ...]:
    """Passes of a pipeline written as `builtin.module(util.func(a, b{x=1}))` or `a, b{x=1}`."""
    body = text.strip()
    for wrapper in ("builtin.module(", f"{ANCHOR}("):
        if body.startswith(wrapper):
            if not body.endswith(")"):
                raise PipelineError(f"unbalanced brackets in {text!r}")
            body = body[len(wrapper) : -1].strip()
    steps = []
    for part in _split_top_level(body):
        if "(" in part:
            raise PipelineError(f"nested pipelines are not supported: {part!r} (passes run on {ANCHOR})")
        name, _, rest = part.partition("{")
        options = []
        if rest:
            if not rest.endswith("}"):
                raise PipelineError(f"unbalanced braces in {part!r}")
            for item in rest[:-1].split():
                key, eq, value = item.partition("=")
                if not eq:
                    raise PipelineError(f"option {item!r} of {name.strip()} has no value")
                options.append((key, value))
        steps.append(PassStep(name.strip(), tuple(options)))
    return tuple(steps)


def passes_of_flags(flags: tuple[str, ...] | list[str]) -> tuple[tuple[PassStep, ...], list[str]]:
    """(passes of a --iree-preprocessing-pass-pipeline flag, the other flags)."""
    passes: tuple[PassStep, ...] = ()
    rest = []
    for flag in flags:
        if flag.startswith(PIPELINE_FLAG):
            passes = parse_passes(flag[len(PIPELINE_FLAG) :])
        else:
            rest.append(flag)
    return passes, rest


def with_scripts_in(flags: list[str], folder: pathlib.Path) -> list[str]:
    """`flags` with every transform script a pipeline names copied into `folder` and the
    flag pointing at the copy: exported flags must not depend on a temporary file."""
    out = []
    for flag in flags:
        if not flag.startswith(PIPELINE_FLAG):
            out.append(flag)
            continue
        steps = []
        for step in parse_passes(flag[len(PIPELINE_FLAG) :]):
            options = []
            for option, value in step.options:
                if option == SCRIPT_OPTION and pathlib.Path(value).is_file():
                    copy = folder / pathlib.Path(value).name
                    folder.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(value, copy)
                    value = str(copy.resolve())
                options.append((option, value))
            steps.append(PassStep(step.name, tuple(options)))
        out.append(PIPELINE_FLAG + Pipeline(tuple(steps)).text())
    return out
