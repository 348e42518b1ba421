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
import pathlib
from typing import Any

from ..errors import ConfigError
from ..spec import CompilationConfig

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
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
        return cls(
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
