"""The pipeline space (spaces/pipelines.yaml), checked against the installed IREE."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import stat
import tempfile

import yaml

from .. import iree
from ..errors import ConfigError, SpaceError
from ..files import write_atomic
from ..spaces import SPACES_DIR, FlagCandidate, resolve_flags
from ._pipeline import (
    INTERPRETER,
    PIPELINE_FLAG,
    SCRIPT_OPTION,
    PassStep,
    Pipeline,
    PipelineError,
    parse_passes,
    passes_of_flags,
)

log = logging.getLogger("schedtune")

NO_OPTION = "none"  # an option value meaning "leave the option out"
SCRIPT_PREFIX = "script:"  # a step that is a transform-dialect script from spaces/pipeline_scripts
OFF = "off"  # the first choice of every flag group


@dataclasses.dataclass(frozen=True)
class PassSpec:
    name: str
    when_any: frozenset[str] = frozenset()
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()  # option -> legal values
    note: str = ""
    template: str = ""  # a script step's transform-dialect text, with {{option}} placeholders
    # A named step that stands for several registered passes run in this order (one concept
    # whose passes do nothing or harm apart); it takes one slot and is exported as its passes.
    sequence: tuple[str, ...] = ()

    def script_path(self, options: tuple[tuple[str, str], ...]) -> pathlib.Path:
        """The rendered script for these option values, in a content-addressed file of this
        user's private script folder (`script_folder`); a file found there is used only when
        its content is the rendered text."""
        text = self.template
        for option, value in options:
            text = text.replace("{{" + option + "}}", value)
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        path = script_folder() / f"{self.name.removeprefix(SCRIPT_PREFIX)}-{digest}.mlir"
        try:
            if path.read_text() == text:
                return path
        except OSError:
            pass
        write_atomic(path, text)  # a temporary name nobody else can have (O_EXCL), then renamed
        return path


def script_folder() -> pathlib.Path:
    """This user's folder of rendered transform scripts: `$SCHEDTUNE_SCRIPT_DIR` or the temp
    folder, `schedtune-scripts-<uid>`, mode 0700. One that exists but is not this user's, is a
    link, or others may write gives way to a fresh private folder: on a shared host another
    user must not decide which script is compiled into the model."""
    base = pathlib.Path(os.environ.get("SCHEDTUNE_SCRIPT_DIR", tempfile.gettempdir()))
    folder = base / f"schedtune-scripts-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = folder.lstat()
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
        return folder
    global _PRIVATE_FALLBACK
    if _PRIVATE_FALLBACK is None or not _PRIVATE_FALLBACK.is_dir():
        _PRIVATE_FALLBACK = pathlib.Path(tempfile.mkdtemp(prefix="schedtune-scripts-"))
    return _PRIVATE_FALLBACK


_PRIVATE_FALLBACK: pathlib.Path | None = None


@dataclasses.dataclass(frozen=True)
class FlagGroup:
    name: str
    choices: tuple[tuple[str, tuple[str, ...]], ...]  # choice -> flags; the first is "off"
    when_any: frozenset[str] = frozenset()

    def flags(self, choice: str) -> tuple[str, ...]:
        return dict(self.choices)[choice]


@dataclasses.dataclass(frozen=True)
class PipelineSpace:
    passes: tuple[PassSpec, ...]
    groups: tuple[FlagGroup, ...]
    max_length: int

    @property
    def digest(self) -> str:
        """Changes with the space: a study's parameters are fixed by the space it began with."""
        canonical = json.dumps(
            {
                "passes": [[p.name, sorted(p.when_any), p.options, p.template, p.sequence] for p in self.passes],
                "groups": [[g.name, sorted(g.when_any), g.choices] for g in self.groups],
                "max_length": self.max_length,
            }
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:8]

    def pass_spec(self, name: str) -> PassSpec | None:
        return next((p for p in self.passes if p.name == name), None)

    def for_families(self, families: set[str]) -> PipelineSpace:
        """The passes and flag groups that can act on a model with these op families."""
        return dataclasses.replace(
            self,
            passes=tuple(p for p in self.passes if not p.when_any or p.when_any & families),
            groups=tuple(g for g in self.groups if not g.when_any or g.when_any & families),
        )

    def completed(self, pipeline: Pipeline) -> Pipeline:
        """`pipeline` with every option the space cannot leave out (no "none" among its values)
        set to its first value where it was not given: what the search encodes and builds."""
        steps = []
        for step in pipeline.passes:
            spec = self.pass_spec(step.name)
            given = dict(step.options)
            extra = tuple(
                (option, values[0])
                for option, values in (spec.options if spec else ())
                if option not in given and NO_OPTION not in values
            )
            steps.append(dataclasses.replace(step, options=step.options + extra))
        return dataclasses.replace(pipeline, passes=tuple(steps))

    def text(self, pipeline: Pipeline) -> str | None:
        """The textual pass pipeline, script steps as the transform interpreter on their
        rendered file, sequence steps as their passes (None when there is no step)."""
        steps = []
        for step in pipeline.passes:
            spec = self.pass_spec(step.name)
            if spec is not None and spec.template:
                steps.append(PassStep(INTERPRETER, ((SCRIPT_OPTION, str(spec.script_path(step.options))),)))
            elif spec is not None and spec.sequence:
                steps.extend(PassStep(name) for name in spec.sequence)
            else:
                steps.append(step)
        return Pipeline(tuple(steps)).text()

    def folded(self, passes: tuple[PassStep, ...]) -> tuple[PassStep, ...]:
        """`passes` with every run of a sequence step's passes (without options) written as
        that step: the inverse of `text` for flags read back (fixed sets, exported flags)."""
        sequences = [p for p in self.passes if p.sequence]
        out: list[PassStep] = []
        i = 0
        while i < len(passes):
            for spec in sequences:
                run = passes[i : i + len(spec.sequence)]
                if tuple(s.name for s in run) == spec.sequence and not any(s.options for s in run):
                    out.append(PassStep(spec.name))
                    i += len(spec.sequence)
                    break
            else:
                out.append(passes[i])
                i += 1
        return tuple(out)

    def problems(self, pipeline: Pipeline) -> list[str]:
        """Why `pipeline` is not a point of this space (empty: it is)."""
        out = []
        if len(pipeline.passes) > self.max_length:
            out.append(f"{len(pipeline.passes)} passes, at most {self.max_length}")
        names = [p.name for p in pipeline.passes]
        for name in sorted({n for n in names if names.count(n) > 1}):
            out.append(f"{name} appears twice")
        for step in pipeline.passes:
            spec = self.pass_spec(step.name)
            if spec is None:
                out.append(f"unknown pass {step.name} (allowed: {', '.join(p.name for p in self.passes)})")
                continue
            legal = dict(spec.options)
            for option, value in step.options:
                if option not in legal:
                    out.append(f"{step.name} has no option {option} (options: {', '.join(legal) or 'none'})")
                elif value not in legal[option] or value == NO_OPTION:
                    out.append(f"{step.name}{{{option}={value}}}: value not in {list(legal[option])}")
        groups = {g.name: g for g in self.groups}
        for group, choice in pipeline.choices:
            if group not in groups:
                out.append(f"unknown flag group {group} (groups: {', '.join(groups) or 'none'})")
            elif choice not in dict(groups[group].choices):
                out.append(f"flag group {group}: unknown choice {choice} ({', '.join(dict(groups[group].choices))})")
        return out

    def flags(self, pipeline: Pipeline) -> list[str]:
        """The iree-compile flags of `pipeline` (a user pipeline's passes need not be in the space)."""
        out = []
        groups = {g.name: g for g in self.groups}
        for group, choice in pipeline.choices:
            out += groups[group].flags(choice)
        text = self.text(pipeline)
        if text:
            out.append(PIPELINE_FLAG + text)
        return out

    def from_flags(self, flags: tuple[str, ...] | list[str]) -> Pipeline | None:
        """The point of this space a flag list is (a fixed flag candidate), None if it is none."""
        try:
            passes, rest = passes_of_flags(flags)
        except PipelineError:
            return None
        passes = self.folded(passes)
        choices = []
        remaining = list(rest)
        # Longest choices first: data-tiling+ukernels before data-tiling alone.
        for group in self.groups:
            for choice, group_flags in sorted(group.choices, key=lambda c: -len(c[1])):
                if group_flags and all(f in remaining for f in group_flags):
                    choices.append((group.name, choice))
                    for f in group_flags:
                        remaining.remove(f)
                    break
        if remaining:
            return None
        pipeline = Pipeline(passes, tuple(choices))
        return pipeline if not self.problems(pipeline) else None


def compile_ready(space: PipelineSpace, candidates: list[FlagCandidate]) -> list[FlagCandidate]:
    """Fixed flag sets (spaces/model_flags.yaml) as iree-compile takes them: a set may name a
    transform script of the space as a step `script:NAME`, rendered here to the interpreter on
    its file. A set that is not a point of `space` (a script this IREE lacks) is left out, with
    a warning: iree-compile would ignore the unknown step and build the default silently."""
    out = []
    for candidate in candidates:
        if SCRIPT_PREFIX not in " ".join(candidate.flags):
            out.append(candidate)
            continue
        pipeline = space.from_flags(candidate.flags)
        if pipeline is None:
            log.warning("flag set %s names a script step this IREE or model cannot run: left out", candidate.name)
            continue
        out.append(dataclasses.replace(candidate, flags=tuple(space.flags(pipeline))))
    return out


def _installed(data: dict, path: pathlib.Path) -> tuple[list[PassSpec], list[str]]:
    """The space's passes that the installed iree-opt has, and warnings for the rest."""
    registered = iree.registered_passes()
    passes, warnings = [], []
    for item in data.get("passes", []):
        name = item["name"]
        if "sequence" in item:
            sequence = tuple(str(n) for n in item["sequence"])
            if item.get("options") or len(sequence) < 2:
                raise SpaceError(f"{path}: {name}: a sequence step names two or more passes and has no options")
            missing = [n for n in sequence if n not in registered]
            if missing:
                warnings.append(f"{path.name}: {name}: {', '.join(missing)} not in the installed IREE: left out")
                continue
            passes.append(PassSpec(name, frozenset(item.get("when_any", [])), (), item.get("note", ""), "", sequence))
            continue
        if name not in registered:
            warnings.append(f"{path.name}: {name} is not in the installed IREE: left out")
            continue
        options = []
        for option, values in (item.get("options") or {}).items():
            if option not in registered[name]:
                warnings.append(f"{path.name}: {name} has no option {option} in the installed IREE: left out")
                continue
            options.append((str(option), tuple(str(v) for v in values)))
        passes.append(PassSpec(name, frozenset(item.get("when_any", [])), tuple(options), item.get("note", "")))
    for item in data.get("scripts", []):
        if INTERPRETER not in registered:
            warnings.append(f"{path.name}: {INTERPRETER} is not in the installed IREE: scripts left out")
            break
        template = (path.parent / "pipeline_scripts" / item["template"]).read_text()
        options = tuple((str(o), tuple(str(v) for v in values)) for o, values in (item.get("options") or {}).items())
        passes.append(
            PassSpec(
                SCRIPT_PREFIX + item["name"],
                frozenset(item.get("when_any", [])),
                options,
                item.get("note", ""),
                template,
            )
        )
    return passes, warnings


def load_pipeline_space(folder: pathlib.Path = SPACES_DIR) -> PipelineSpace:
    path = folder / "pipelines.yaml"
    try:
        data = yaml.safe_load(path.read_text())
        passes, warnings = _installed(data, path)
        groups = []
        for item in data.get("global_flags", []):
            choices = tuple((str(c), resolve_flags(f)) for c, f in item["choices"].items())
            if not choices or choices[0][0] != OFF or choices[0][1]:
                raise SpaceError(f"{path}: flag group {item['name']}: the first choice must be off: []")
            groups.append(FlagGroup(item["name"], choices, frozenset(item.get("when_any", []))))
        space = PipelineSpace(tuple(passes), tuple(groups), int(data.get("max_length", 3)))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SpaceError(f"{path}: malformed pipeline space ({exc})") from None
    for warning in warnings:
        log.warning(warning)
    return space


def pipeline_error(space: PipelineSpace, pipeline: Pipeline, *, strict: bool = True) -> str | None:
    """Why `pipeline` cannot be compiled, in one line, before any compile: outside the space
    (with `strict`), or not parsed by iree-opt (unknown pass or option, bad value)."""
    if strict:
        problems = space.problems(pipeline)
        if problems:
            return "; ".join(problems)
    else:
        groups = {g.name for g in space.groups}
        unknown = [g for g, _ in pipeline.choices if g not in groups]
        if unknown:
            return f"unknown flag group {unknown[0]}"
    text = space.text(pipeline)
    if text:
        error = iree.pass_pipeline_error(text)
        if error:
            return f"iree-opt rejects {text}: {error}"
    return None


def user_pipelines(texts: tuple[str, ...] | list[str]) -> list[Pipeline]:
    """A job's own pipelines (`search.pipelines`), each checked by iree-opt; the first bad one
    raises a one-line `ConfigError` before anything is compiled."""
    space = load_pipeline_space()
    out = []
    for i, text in enumerate(texts):
        try:
            pipeline = Pipeline(space.folded(parse_passes(text)))
        except PipelineError as exc:
            raise ConfigError(f"search.pipelines[{i}]: {exc}") from None
        error = pipeline_error(space, pipeline, strict=False)
        if error:
            raise ConfigError(f"search.pipelines[{i}]: {error}")
        out.append(pipeline)
    return out
