"""Tuning records: what one finished study learnt, in a form that travels between machines.

A history file is JSON lines: a header line, then one record per line.

    {"format": "schedtune-history", "version": 1}
    {"compiler": ..., "cpu_model": ..., "cpu_features": ..., "family": "conv2d",
     "op_name": "linalg.conv_2d_nchw_fchw", "element_types": ["f32", "f32", "f32"],
     "loops": [["n", 8], ["oc", 32], ...], "flags": [...], "config": {...},
     "time_ns": ..., "default_ns": ..., "status": "ok", "source": "cnn:conv2d_8x32x...", "trials": 40}

`loops` keeps the root op's loop order and knob names; `config` is a CompilationConfig's
JSON; `time_ns` and `default_ns` are in-model times of the config and of IREE's default on
the machine that measured them. Records are hints: a tuner re-verifies each on its own
machine (compile, numerics, timing) before anything ships.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import re
from typing import Any

from ..errors import ConfigError
from ..families import FAMILIES
from ..spec import PIPELINES, TILE_LEVELS, CompilationConfig

FORMAT = "schedtune-history"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class Record:
    compiler: str
    cpu_model: str
    cpu_features: str
    family: str
    op_name: str
    element_types: tuple[str, ...]
    loops: tuple[tuple[str, int], ...]
    flags: tuple[str, ...]
    config: CompilationConfig
    time_ns: float
    default_ns: float
    status: str = "ok"
    source: str = ""
    trials: int = 0

    def problems(self) -> list[str]:
        """What makes this record unusable (empty: nothing). A record is data from another
        machine or person: every field that later reaches a compile, a log or a formula is
        checked here, once, when it enters."""
        out = []
        families = {f.name for f in FAMILIES}
        if self.family not in families:
            out.append(f"unknown op family {self.family!r}")
        if not re.fullmatch(r"linalg\.[a-z0-9_]+", self.op_name):
            out.append(f"op_name {self.op_name!r} is not a linalg op name")
        for name, text in (("compiler", self.compiler), ("cpu_model", self.cpu_model), ("source", self.source)):
            if "\n" in text or "\r" in text or len(text) > 500:
                out.append(f"{name} is not a single short line")
        if not re.fullmatch(r"[a-z0-9_.,+-]*", self.cpu_features):
            out.append("cpu_features is not a comma-separated feature list")
        if not all(re.fullmatch(r"[a-z0-9]+", t) for t in self.element_types):
            out.append(f"element_types {list(self.element_types)!r} are not element type names")
        if not self.loops or any(not re.fullmatch(r"[a-z][a-z0-9_]*", n) or b < 1 for n, b in self.loops):
            out.append("loops must be (name, trip count >= 1) pairs")
        if any("\n" in f or not f.startswith("--") for f in self.flags):
            out.append("flags must be single-line --flags")
        if self.config.pipeline not in PIPELINES:
            out.append(f"unknown pipeline {self.config.pipeline!r}")
        for level, sizes in self.config.tile_map.items():
            if level not in TILE_LEVELS:
                out.append(f"unknown tile level {level!r}")
            elif len(sizes) != len(self.loops) or any(not isinstance(v, int) or v < 0 for v in sizes):
                out.append(f"tile level {level}: {list(sizes)} is not one tile >= 0 per loop")
        for name, value in (("time_ns", self.time_ns), ("default_ns", self.default_ns)):
            if not math.isfinite(value) or value <= 0:
                out.append(f"{name} must be a finite time > 0, got {value!r}")
        if self.status != "ok":
            out.append(f"status {self.status!r}: only measured configs ('ok') are records")
        if self.trials < 0:
            out.append("trials must be >= 0")
        return out

    @property
    def speedup(self) -> float:
        return self.default_ns / self.time_ns if self.time_ns else 1.0

    @property
    def loop_bounds(self) -> dict[str, int]:
        return dict(self.loops)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["config"] = self.config.to_json()
        data["element_types"] = list(self.element_types)
        data["loops"] = [list(l) for l in self.loops]
        data["flags"] = list(self.flags)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """A checked record; ValueError naming the first problem."""
        if not isinstance(data, dict):
            raise ValueError("a record is a JSON object")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
        record = cls(
            compiler=str(data["compiler"]),
            cpu_model=str(data["cpu_model"]),
            cpu_features=str(data["cpu_features"]),
            family=str(data["family"]),
            op_name=str(data["op_name"]),
            element_types=tuple(str(t) for t in data["element_types"]),
            loops=tuple((str(n), int(b)) for n, b in data["loops"]),
            flags=tuple(str(f) for f in data["flags"]),
            config=CompilationConfig.from_json(data["config"]),
            time_ns=float(data["time_ns"]),
            default_ns=float(data["default_ns"]),
            status=str(data.get("status", "ok")),
            source=str(data.get("source", "")),
            trials=int(data.get("trials", 0)),
        )
        problems = record.problems()
        if problems:
            raise ValueError(problems[0])
        return record


def write_records(path: pathlib.Path, records: list[Record]) -> None:
    lines = [json.dumps({"format": FORMAT, "version": VERSION})]
    lines += [json.dumps(r.to_json(), sort_keys=True) for r in records]
    path.write_text("\n".join(lines) + "\n")


def read_records(path: pathlib.Path) -> list[Record]:
    """Every record of a history file; ConfigError (one line) on anything malformed."""
    if not path.is_file():
        raise ConfigError(f"history file not found: {path}")
    lines = [l for l in path.read_text().splitlines() if l.strip()]
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a schedtune history file (first line must be the {FORMAT} header)")
    if header.get("version") != VERSION:
        raise ConfigError(f"{path}: history format version {header.get('version')!r}; this schedtune reads {VERSION}")
    records = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            records.append(Record.from_json(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}:{number}: bad record ({exc})") from None
    return records
