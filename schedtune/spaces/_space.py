"""Knob spaces per op family (from `spaces/*.yaml`) and the skeletons proposers draw in them.

A *space* says which values each tile of each loop may take for a family; a *skeleton*
(what a proposer returns) fixes the structure (pipeline, peeling, tile levels) and narrows
each numeric knob to a few choices. Validation here is what keeps proposer output, LLM or
not, from ever reaching the compiler unchecked.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import random
from typing import Any

import yaml

from ..dispatches import RootOp
from ..errors import SpaceError
from ..families import element_bytes, get_family
from ..spec import MAX_NATIVE_VECTORS, PIPELINES, TILE_LEVELS, TRANSFORM_DIALECT, CompilationConfig, transform_problems

# The knob spaces: YAML data shipped in the wheel (pyproject.toml's package-data).
SPACES_DIR = pathlib.Path(__file__).parent / "files"


# The largest tile a `divisors` entry stands for: a register block wider than this spills.
# `wide-divisors` start at _MIN_WIDE (or the whole loop when it is shorter): narrow register
# blocks along a conv's output row ran 15-20x slower than IREE's default (7x7x512, Zen 4).
_MAX_DIVISOR = 32
_MIN_WIDE = 4


def expand_values(values: list, bound: int, lanes: int | None = None) -> list[int]:
    """Tile values of a space or skeleton entry for a loop of `bound` iterations. Besides
    integers: `full` (the whole loop), `divisors` (every divisor of the loop up to 32: a 7-wide
    row takes 7, which no power of two divides), `wide-divisors` (those from 4), and, in skeletons, `lanes`, `2lanes`, `4lanes`
    (multiples of the target's vector width in the op's element type)."""
    out: list[int] = []
    for v in values:
        if v == "full":
            out.append(bound)
        elif v in ("divisors", "wide-divisors"):
            low = 1 if v == "divisors" else min(_MIN_WIDE, bound)
            out += [d for d in range(low, min(bound, _MAX_DIVISOR) + 1) if bound % d == 0]
        elif isinstance(v, str) and v.endswith("lanes"):
            if lanes is None:
                raise SpaceError(f"{v!r}: vector-width values are for skeletons, not the space's levels")
            out.append((int(v[: -len("lanes")]) if v != "lanes" else 1) * lanes)
        else:
            out.append(int(v))
    return out


def loop_names(root: RootOp) -> list[str]:
    """Knob names for the loops: the role (m, oc, ...), suffixed by position when a role repeats."""
    roles = [l.role for l in root.loops]
    return [r if roles.count(r) == 1 else f"{r}{i}" for i, r in enumerate(roles)]


def loop_bounds(root: RootOp) -> dict[str, int]:
    """Trip count per loop, keyed by `loop_names` (a role that repeats keeps every loop)."""
    return dict(zip(loop_names(root), (l.bound for l in root.loops)))


def _role(name: str) -> str:
    return name.rstrip("0123456789") or name


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """A proposer's structure for one dispatch; numeric knobs keep a tuple of choices each."""

    name: str
    pipeline: str
    loop_peeling: tuple[bool, ...]
    levels: tuple[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]], ...]
    ties: tuple[tuple[str, str], ...] = ()  # level -> level it copies (cache_parallel = distribution)
    rationale: str = ""

    @classmethod
    def make(
        cls,
        name: str,
        pipeline: str,
        loop_peeling: list[bool] | tuple[bool, ...],
        levels: dict[str, dict[str, list[int] | tuple[int, ...]]],
        ties: dict[str, str] | None = None,
        rationale: str = "",
    ) -> Skeleton:
        # IREE's level order first; unknown levels are kept (last) so validation can name them.
        names = [lvl for lvl in TILE_LEVELS if lvl in levels] + [lvl for lvl in levels if lvl not in TILE_LEVELS]
        ordered = tuple(
            (lvl, tuple((loop, tuple(int(v) for v in levels[lvl][loop])) for loop in levels[lvl])) for lvl in names
        )
        return cls(
            name,
            pipeline,
            tuple(bool(p) for p in loop_peeling),
            ordered,
            tuple(sorted((ties or {}).items())),
            rationale,
        )

    @classmethod
    def pinned(cls, name: str, config: CompilationConfig, loops: list[str], rationale: str = "") -> Skeleton:
        """A skeleton of exactly one config (no free knob)."""
        levels = {lvl: {loop: [v] for loop, v in zip(loops, sizes)} for lvl, sizes in config.tiles}
        return cls.make(name, config.pipeline, [config.loop_peeling], levels, {}, rationale)

    @property
    def level_map(self) -> dict[str, dict[str, tuple[int, ...]]]:
        return {lvl: dict(knobs) for lvl, knobs in self.levels}

    def knobs(self) -> list[tuple[str, tuple[int, ...]]]:
        """Free knobs (more than one choice) as (parameter name, choices)."""
        out = []
        for lvl, knobs in self.levels:
            for loop, vals in knobs:
                if len(set(vals)) > 1:
                    out.append((f"{lvl}.{loop}", tuple(dict.fromkeys(vals))))
        if len(set(self.loop_peeling)) > 1:
            out.append(("loop_peeling", tuple(int(v) for v in dict.fromkeys(self.loop_peeling))))
        return out

    def config(self, values: dict[str, int], loops: list[str]) -> CompilationConfig:
        """The concrete config for chosen knob values (fixed knobs take their single choice)."""
        tiles: dict[str, list[int]] = {}
        for lvl, knobs in self.levels:
            chosen = dict(knobs)
            tiles[lvl] = [int(values.get(f"{lvl}.{loop}", chosen[loop][0])) if loop in chosen else 0 for loop in loops]
        for lvl, source in self.ties:
            tiles[lvl] = list(tiles[source])
        peeling = bool(values.get("loop_peeling", self.loop_peeling[0]))
        return CompilationConfig.make(self.pipeline, tiles, peeling)

    def values_for(self, config: CompilationConfig, loops: list[str]) -> dict[str, int] | None:
        """Knob values that reproduce `config` inside this skeleton (None if it is outside)."""
        if config.pipeline != self.pipeline:
            return None
        values: dict[str, int] = {}
        tiles = config.tile_map
        for name, choices in self.knobs():
            if name == "loop_peeling":
                value = int(config.loop_peeling)
            else:
                lvl, loop = name.split(".", 1)
                value = tiles.get(lvl, (0,) * len(loops))[loops.index(loop)]
            if value not in choices:
                return None
            values[name] = value
        if self.config(values, loops).canonical() != config.canonical():
            return None
        return values

    def centre(self) -> dict[str, int]:
        """A representative point: the middle choice of every free knob (used to validate)."""
        return {name: choices[len(choices) // 2] for name, choices in self.knobs()}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pipeline": self.pipeline,
            "loop_peeling": list(self.loop_peeling),
            "levels": {lvl: {loop: list(vals) for loop, vals in knobs} for lvl, knobs in self.levels},
            "ties": dict(self.ties),
            "rationale": self.rationale,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Skeleton:
        return cls.make(
            data["name"],
            data["pipeline"],
            data["loop_peeling"],
            data["levels"],
            data.get("ties"),
            data.get("rationale", ""),
        )


@dataclasses.dataclass(frozen=True)
class KnobSpace:
    """The legal values of every knob of one family, and the constraints checked before compiling."""

    family: str
    description: str
    pipelines: tuple[str, ...]
    loop_peeling: tuple[bool, ...]
    levels: dict[str, dict[str, Any]]
    ties: dict[str, str]
    vector_within_distribution: bool
    library: tuple[dict[str, Any], ...] = ()
    # IREE's default config for one op (see `admitting`) and that op's loop names.
    admitted: CompilationConfig | None = None
    admitted_loops: tuple[str, ...] = ()

    def admitting(self, root: RootOp) -> KnobSpace:
        """This space for one op, with IREE's default config for it as a legal point: its
        pipeline, its peeling and every tile it chose, whatever the family's file lists, and
        the constraints waived for exactly that config (IREE built it). So the baseline is a
        trial of every search and the neighbourhood skeleton can move away from it one knob
        at a time. Without this, a default the file cannot express (vector tile 1 on a batch
        loop that reads as `n`, an odd n of 10, NCHW depthwise on DoubleTilingExpert) left a
        search with no baseline, and its best found could be slower than the default."""
        default = root.default_config
        if default is None:
            return self
        tiles = default.tile_map
        # A level IREE sets and the file does not tune takes IREE's values only (0 elsewhere).
        levels = {**{lvl: {} for lvl in tiles if lvl in TILE_LEVELS}, **self.levels}
        # A tie the default does not keep (its tile differs from the source's) is cut.
        ties = {lvl: src for lvl, src in self.ties.items() if lvl not in tiles or tiles[lvl] == tiles.get(src)}
        return dataclasses.replace(
            self,
            pipelines=tuple(dict.fromkeys((*self.pipelines, default.pipeline))),
            loop_peeling=tuple(dict.fromkeys((*self.loop_peeling, default.loop_peeling))),
            levels=levels,
            ties=ties,
            admitted=default,
            admitted_loops=tuple(loop_names(root)),
        )

    def offering_transform_dialect(self, root: RootOp) -> KnobSpace:
        """This space with the transform-dialect tier as one more pipeline, where the root's
        dispatch can be rebuilt by a script (see `spec/_transform.py`)."""
        if root.matcher is None or root.matcher.dispatch_ops is None or TRANSFORM_DIALECT in self.pipelines:
            return self
        return dataclasses.replace(self, pipelines=(*self.pipelines, TRANSFORM_DIALECT))

    def transform_skeleton(self, root: RootOp) -> Skeleton:
        """The transform-dialect tier's skeleton: the three innermost parallel loops take the
        workgroup grid, tiles divide their loops (no dynamic shapes for the vectoriser), each
        reduction is stepped by a divisor of its loop. A dense conv keeps a register block of one
        output row and steps its filter rows one at a time: only then does IREE's pass decompose
        it into 1-D convs that vectorise (any other block leaves it scalar)."""
        parallel = [i for i, l in enumerate(root.loops) if l.parallel]
        one_row = {"oh", "kh"} if root.family == "conv2d" else set()
        grid = parallel[-3:]
        levels: dict[str, dict[str, list[int]]] = {
            "distribution": {},
            "vector_common_parallel": {},
            "vector_reduction": {},
        }
        for i, (name, loop) in enumerate(zip(loop_names(root), root.loops)):
            divisors = [d for d in (1, 2, 4, 8, 16, 32, 64, loop.bound) if d <= loop.bound and loop.bound % d == 0]
            if loop.parallel:
                levels["distribution"][name] = (
                    sorted({d for d in divisors if d > 1} or {loop.bound}) if i in grid else [0]
                )
                levels["vector_common_parallel"][name] = (
                    [1] if loop.role in one_row else sorted({d for d in divisors if d <= 32})
                )
                levels["vector_reduction"][name] = [0]
            else:
                levels["distribution"][name] = [0]
                levels["vector_common_parallel"][name] = [0]
                levels["vector_reduction"][name] = [1] if loop.role in one_row else divisors
        return Skeleton.make(
            "td:tile-fuse-vectorise",
            TRANSFORM_DIALECT,
            [False],
            levels,
            {},
            "transform-dialect codegen: workgroup tiles, a register block, reduction steps, every other op of the "
            "dispatch fused in, vectorised",
        )

    def _admitted_value(self, level: str, loop: str) -> int | None:
        if self.admitted is None or loop not in self.admitted_loops:
            return None
        sizes = self.admitted.tile_map.get(level)
        return None if sizes is None else sizes[self.admitted_loops.index(loop)]

    def legal_values(self, level: str, loop: str, bound: int) -> list[int]:
        spec = self.levels.get(level, {}).get(_role(loop))
        if spec is None:
            vals = [0]
        elif spec == "pow2":
            vals = [2**i for i in range(int(math.log2(max(bound, 1))) + 1)] + [bound]
        else:
            vals = expand_values(spec, bound)
        legal = {v for v in vals if v == 0 or v <= bound}
        if not legal:  # every listed value exceeds this loop: the whole loop is the only tile
            legal = {bound}
        admitted = self._admitted_value(level, loop)
        if admitted is not None:
            legal.add(admitted)
        return sorted(legal)

    def is_legal(self, level: str, loop: str, bound: int, value: int) -> bool:
        """`pow2` knobs suggest powers of two but accept any tile up to the trip count
        (IREE's own defaults, e.g. 48, must be expressible); listed knobs accept their list."""
        spec = self.levels.get(level, {}).get(_role(loop))
        if spec == "pow2" and 1 <= value <= bound:
            return True
        return value in self.legal_values(level, loop, bound)

    def full_skeleton(self, root: RootOp, name: str = "space-wide") -> Skeleton:
        loops = loop_names(root)
        levels = {
            lvl: {loop: self.legal_values(lvl, loop, l.bound) for loop, l in zip(loops, root.loops)}
            for lvl in self.levels
            if lvl not in self.ties
        }
        return Skeleton.make(
            name,
            self.pipelines[0],
            list(self.loop_peeling),
            levels,
            self.ties,
            "every legal value of the family's space",
        )

    def library_skeletons(self, root: RootOp) -> list[Skeleton]:
        """The family's skeleton library, instantiated for this op's loops."""
        loops = loop_names(root)
        parallel = [l.role for l in root.loops if l.parallel]
        if root.contiguous_loop is not None:
            innermost = root.loops[root.contiguous_loop].role
        else:
            innermost = parallel[-1] if parallel else ""
        lanes = max(root.native_vector_bytes // element_bytes(root.element_types[2]), 1)
        out = []
        for entry in self.library:
            if entry.get("when_innermost") not in (None, innermost):
                continue
            given = entry.get("levels", {})
            levels: dict[str, dict[str, list[int]]] = {}
            for lvl in self.levels:
                if lvl in self.ties:
                    continue
                levels[lvl] = {}
                for loop, l in zip(loops, root.loops):
                    legal = self.legal_values(lvl, loop, l.bound)
                    wanted = given.get(lvl, {}).get(_role(loop))
                    if wanted is None:
                        levels[lvl][loop] = legal if len(legal) == 1 else legal[:1]
                        continue
                    vals = expand_values(wanted, l.bound, lanes)
                    levels[lvl][loop] = [v for v in vals if v in legal] or legal
            peeling = [p for p in entry.get("loop_peeling", self.loop_peeling) if p in self.loop_peeling] or list(
                self.loop_peeling
            )
            out.append(
                Skeleton.make(
                    f"lib:{entry['name']}",
                    entry.get("pipeline", self.pipelines[0]),
                    peeling,
                    levels,
                    self.ties,
                    " ".join(str(entry.get("rationale", "")).split()),
                )
            )
        return out

    def check_config(self, config: CompilationConfig, root: RootOp) -> list[str]:
        """Constraint violations of one concrete config (empty when it may be compiled)."""
        if self.admitted is not None and config.canonical() == self.admitted.canonical():
            return []
        errors = []
        tiles = config.tile_map
        n = len(root.loops)
        for lvl, sizes in tiles.items():
            if len(sizes) != n:
                errors.append(f"{lvl} has {len(sizes)} entries, the op has {n} loops")
                return errors
            for size, loop in zip(sizes, root.loops):
                if size < 0 or size > max(loop.bound, 1) and size != 0:
                    errors.append(f"{lvl} tile {size} outside [0, {loop.bound}] for loop {loop.role}")
        family = get_family(self.family)
        in_ukernel = family.ukernel_roles if family is not None else frozenset()
        vector = [1] * n
        for lvl in ("vector_common_parallel", "vector_reduction", "vector_inner_parallel"):
            for i, size in enumerate(tiles.get(lvl, ())):
                if size and root.loops[i].role not in in_ukernel:
                    vector[i] = max(vector[i], size)
        elements = math.prod(vector)
        limit = root.vector_limit
        if elements >= limit:
            errors.append(
                f"vector tile has {elements} elements; IREE rejects {limit} or more on this CPU "
                f"({MAX_NATIVE_VECTORS} native vectors)"
            )
        if config.pipeline == TRANSFORM_DIALECT:
            if root.matcher is None or root.matcher.dispatch_ops is None:
                errors.append("this dispatch cannot be rebuilt by a transform script")
            bounds = [l.bound for l in root.loops]
            errors += transform_problems(config, bounds, [l.parallel for l in root.loops])
            return errors
        if family is not None:
            errors += family.check_config(config, root.loops, limit, root.native_vector_bytes)
        if self.vector_within_distribution and "distribution" in tiles:
            for i, (d, v) in enumerate(zip(tiles["distribution"], tiles.get("vector_common_parallel", ()))):
                if d and v and v > d:
                    errors.append(f"vector tile {v} exceeds distribution tile {d} on loop {root.loops[i].role}")
        return errors

    def check_skeleton(self, skeleton: Skeleton, root: RootOp) -> list[str]:
        """Why a skeleton is not in this space (empty when valid). Messages are fed back to an LLM."""
        errors = []
        if skeleton.pipeline not in PIPELINES:
            errors.append(f"pipeline {skeleton.pipeline!r} is unknown; use one of {list(self.pipelines)}")
        elif skeleton.pipeline not in self.pipelines:
            errors.append(
                f"pipeline {skeleton.pipeline!r} is not allowed for {self.family}; use one of {list(self.pipelines)}"
            )
        if not skeleton.loop_peeling or any(p not in self.loop_peeling for p in skeleton.loop_peeling):
            errors.append(f"loop_peeling must be a non-empty subset of {list(self.loop_peeling)}")
        loops = loop_names(root)
        tied = {lvl for lvl, _ in skeleton.ties}
        for lvl, source in skeleton.ties:
            if lvl not in TILE_LEVELS or source not in TILE_LEVELS:
                errors.append(f"tie {lvl} = {source} names an unknown level")
        for lvl, knobs in skeleton.levels:
            if lvl not in self.levels or lvl in self.ties:
                allowed = [l for l in self.levels if l not in self.ties]
                errors.append(f"tile level {lvl!r} is not tunable for {self.family}; levels: {allowed}")
                continue
            given = dict(knobs)
            for loop in given:
                if loop not in loops:
                    errors.append(f"{lvl}: unknown loop {loop!r}; loops are {loops}")
            for loop, l in zip(loops, root.loops):
                legal = self.legal_values(lvl, loop, l.bound)
                vals = given.get(loop)
                if not vals:
                    errors.append(f"{lvl}.{loop}: no values given; legal: {legal}")
                    continue
                if skeleton.pipeline == TRANSFORM_DIALECT:  # its own rules: check_config
                    bad = [v for v in vals if not 0 <= v <= l.bound]
                else:
                    bad = [v for v in vals if not self.is_legal(lvl, loop, l.bound, v)]
                if bad:
                    errors.append(f"{lvl}.{loop}: {bad} not allowed; legal: {legal}")
        required = [l for l in self.levels if l not in self.ties and l not in tied]
        given_levels = {lvl for lvl, _ in skeleton.levels}
        for lvl in required:
            if lvl not in given_levels:
                errors.append(f"tile level {lvl!r} is missing")
        if not errors and self.feasible_point(skeleton, root) is None:
            cfg = skeleton.config(skeleton.centre(), loops)
            errors += [f"no point satisfies the constraints; centre point: {e}" for e in self.check_config(cfg, root)]
        return errors

    def repair(self, skeleton: Skeleton, values: dict[str, int], root: RootOp) -> dict[str, int] | None:
        """The nearest point of `skeleton` that satisfies the constraints, shrinking vector tiles
        only (None if none does). A sampler spends most of its draws on infeasible points where
        vector sizes multiply (attention: m x keys x head); evaluating the repaired point instead
        turns every draw into a measurement, and the sampler still learns a true value for its
        parameters (the repair is deterministic)."""
        loops = loop_names(root)
        point = dict(values)
        choices = dict(skeleton.knobs())
        vector_knobs = [name for name in choices if name.startswith("vector_")]
        distribution = skeleton.config(point, loops).tile_map.get("distribution", ())
        # A vector tile above its distribution tile: the largest choice that fits under it.
        for name in vector_knobs:
            level, loop = name.split(".", 1)
            cap = distribution[loops.index(loop)] if level == "vector_common_parallel" and distribution else 0
            if cap and point[name] > cap:
                smaller = [c for c in choices[name] if c <= cap]
                if smaller:
                    point[name] = max(smaller)
        # Then shrink the largest vector tile, one choice at a time, until the rest holds.
        for _ in range(sum(len(c) for c in choices.values())):
            if not self.check_config(skeleton.config(point, loops), root):
                return point
            shrinkable = [n for n in vector_knobs if any(c < point[n] for c in choices[n])]
            if not shrinkable:
                return None
            largest = max(shrinkable, key=lambda n: point[n])
            point[largest] = max(c for c in choices[largest] if c < point[largest])
        return None

    def feasible_point(self, skeleton: Skeleton, root: RootOp, tries: int = 256) -> dict[str, int] | None:
        """A point of the skeleton that satisfies the constraints: the centre if it does.

        With several loops of one role (a 1x1 conv as a contraction has m = n, oh, ow) the
        centre's tile product easily passes the vector-size limit although most of the
        skeleton is fine, so other points are tried: the centre with vector tiles shrunk to
        their smallest choice, then seeded random points.
        """
        loops = loop_names(root)
        knobs = skeleton.knobs()
        centre = skeleton.centre()
        small_vectors = {n: (min(c) if n.startswith("vector_") else centre[n]) for n, c in knobs}
        candidates = [centre, small_vectors]
        default = self.admitted and skeleton.values_for(self.admitted, loops)
        if default is not None:
            candidates.insert(0, default)
        rng = random.Random(0)
        candidates += [{n: rng.choice(c) for n, c in knobs} for _ in range(tries)]
        for point in candidates:
            if not self.check_config(skeleton.config(point, loops), root):
                return point
        return None


def load_space(family: str, folder: pathlib.Path = SPACES_DIR) -> KnobSpace | None:
    path = folder / f"{family}.yaml"
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text())
    try:
        levels: dict[str, dict[str, Any]] = {}
        ties: dict[str, str] = {}
        for lvl, spec in data["levels"].items():
            if lvl not in TILE_LEVELS:
                raise SpaceError(f"{path}: unknown tile level {lvl!r}")
            if isinstance(spec, dict) and "same_as" in spec:
                ties[lvl] = spec["same_as"]
            else:
                levels[lvl] = spec
        levels.update({lvl: levels[src] for lvl, src in ties.items()})
        pipelines = tuple(data["pipelines"])
        for p in pipelines:
            if p not in PIPELINES:
                raise SpaceError(f"{path}: unknown pipeline {p!r}")
        constraints = data.get("constraints", {})
        return KnobSpace(
            family=data["family"],
            description=str(data.get("description", "")).strip(),
            pipelines=pipelines,
            loop_peeling=tuple(bool(v) for v in data.get("loop_peeling", [False])),
            levels=levels,
            ties=ties,
            vector_within_distribution=bool(constraints.get("vector_within_distribution", True)),
            library=tuple(data.get("skeletons", [])),
        )
    except (KeyError, TypeError) as exc:
        raise SpaceError(f"{path}: malformed space ({exc})") from None


@dataclasses.dataclass(frozen=True)
class FlagCandidate:
    name: str
    flags: tuple[str, ...]
    note: str = ""


def host_threads() -> int:
    """The cores this process may run on: the worker count IREE's runtime starts by default."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_flags(flags) -> tuple[str, ...]:
    """Flags as written in the space files, placeholders filled in: `{host_threads}` is the
    host's core count (IREE's tile-size heuristics assume 8 threads unless told; the spec and
    flags are tuned for this host anyway)."""
    return tuple(str(f).replace("{host_threads}", str(host_threads())) for f in flags)


def flag_candidates(families: set[str], folder: pathlib.Path = SPACES_DIR) -> tuple[list[FlagCandidate], float]:
    """Model-level flag sets that apply to a model with these op families (default first)."""
    data = yaml.safe_load((folder / "model_flags.yaml").read_text())
    out = []
    for item in data["candidates"]:
        when = set(item.get("when_any", []))
        unless = set(item.get("unless_any", []))
        if when and not when & families:
            continue
        if set(item.get("when_all", [])) - families:
            continue
        if unless & families:
            continue
        out.append(FlagCandidate(item["name"], resolve_flags(item.get("flags", [])), item.get("note", "")))
    return out, float(data.get("min_gain", 0.03))
