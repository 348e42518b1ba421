"""The job config reference (docs/config.md), rendered from the config schema in `_job.py`.

Every key's type and default come from its dataclass field and its meaning from the field's
`metadata={"doc": ...}`: a key without a doc is an error, so the reference cannot drift.
Regenerate with `python -m schedtune.config._reference > docs/config.md`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from ._job import _CHOICES, _MINIMUMS, _SECTIONS, _TOP_DOCS, _TOP_KEYS

REGENERATE = "python -m schedtune.config._reference > docs/config.md"

# The smallest useful job; tests/test_config_reference.py checks that it loads.
EXAMPLE_JOB = """\
name: cnn
model:
  format: mlir
  path: models/cnn.mlir
  inputs: [8x3x32x32xf32]
"""

_TYPE_NAMES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "pathlib.Path": "path",
    "tuple[str, ...]": "list of strings",
}


def config_reference(sections: Mapping[str, type] | None = None) -> str:
    """The job config reference as Markdown. `sections` maps a YAML section to its dataclass
    (default: the job's). Raises `ValueError` naming the key when a key has no doc."""
    sections = _SECTIONS if sections is None else sections
    out = [
        "# Job config reference",
        "",
        f"*Generated from the config schema (`schedtune/config/_job.py`) by `{REGENERATE}`;"
        " edit the field docs there, not this file.*",
        "",
        "A tuning job is one YAML file: `tune --config job.yaml`. Only `name` and the model (`model.format`,"
        " `model.inputs`, and `model.path` or `model.factory`) are needed; every other key has the default"
        " shown below. An unknown key, a wrong type or a value outside its choices stops `tune` before any"
        " work, with one line naming the key (exit code 2).",
        "",
        "A minimal job:",
        "",
        "```yaml",
        EXAMPLE_JOB.rstrip("\n"),
        "```",
        "",
        "## Top level",
        "",
        f"Besides its sections ({', '.join(f'`{s}`' for s in sections)}), a job file has these keys:",
        "",
        *_table_head(),
    ]
    for key in sorted(_TOP_KEYS - set(_SECTIONS), key=lambda k: (k != "name", k)):
        if key not in _TOP_DOCS or not _TOP_DOCS[key][2].strip():
            raise ValueError(f"{key}: the config key has no doc (add it to _TOP_DOCS in schedtune/config/_job.py)")
        kind, default, doc = _TOP_DOCS[key]
        out.append(_row(f"`{key}`", kind, "required" if default is None else f"`{default}`", doc))
    for name, cls in sections.items():
        out += ["", f"## `{name}`", ""]
        intro = _class_doc(cls)
        if intro:
            out += [intro, ""]
        out += _table_head()
        for field in dataclasses.fields(cls):
            key = f"{name}.{field.name}"
            doc = field.metadata.get("doc", "")
            if not isinstance(doc, str) or not doc.strip():
                raise ValueError(
                    f"{key}: the config key has no doc (give its field metadata={{'doc': ...}} in "
                    f"{cls.__module__}.{cls.__qualname__})"
                )
            kind = _type_name(field.type)
            choices = _CHOICES.get(key)
            if choices is not None:
                kind = "one of " + ", ".join(f"`{_yaml(c)}`" for c in choices)
            bound = _MINIMUMS.get(key)
            if bound is not None:
                kind += f", {'>=' if bound[1] else '>'} {bound[0]}"
            out.append(_row(f"`{key}`", kind, _default(field), doc))
    return "\n".join(out) + "\n"


def _table_head() -> list[str]:
    return ["| key | type | default | meaning |", "|---|---|---|---|"]


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


def _class_doc(cls: type) -> str:
    """The section class's own docstring, joined into one paragraph (not the signature that
    `dataclass` makes up for a class without one)."""
    doc = inspect.getdoc(cls) or ""
    if doc.startswith(f"{cls.__name__}("):
        return ""
    return " ".join(doc.split("\n\n")[0].split())


def _type_name(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    parts = [p.strip() for p in text.split("|")]
    shown = " or ".join(_TYPE_NAMES.get(p, p) for p in parts if p != "None")
    return f"{shown} or null" if "None" in parts else shown


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return f"`{_yaml(field.default)}`"
    if field.default_factory is not dataclasses.MISSING:
        return f"`{_yaml(field.default_factory())}`"
    return "required"


def _yaml(value: Any) -> str:
    """A value as it is written in the YAML file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return str(value)


if __name__ == "__main__":
    print(config_reference(), end="")
