"""The job config reference (docs/config.md) is generated from the config schema: it matches
the schema, and a config key without a doc fails."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest
import yaml

from schedtune.config import SearchSpec, config_from_dict, config_reference
from schedtune.config._job import _CHOICES, _SECTIONS, _TOP_DOCS
from schedtune.config._reference import EXAMPLE_JOB, REGENERATE

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_docs_match_the_schema():
    assert DOCS.read_text() == config_reference(), f"docs/config.md is out of date: regenerate it with `{REGENERATE}`"


def test_every_key_is_in_the_reference():
    text = config_reference()
    for name, cls in _SECTIONS.items():
        for field in dataclasses.fields(cls):
            assert f"| `{name}.{field.name}` |" in text
    for key in _TOP_DOCS:
        assert f"| `{key}` |" in text


def test_a_key_without_a_doc_fails():
    undocumented = dataclasses.make_dataclass(
        "SearchSpec", [("shiny_new_knob", "int", dataclasses.field(default=1))], bases=(SearchSpec,), frozen=True
    )
    with pytest.raises(ValueError, match=r"search\.shiny_new_knob: .*no doc"):
        config_reference({**_SECTIONS, "search": undocumented})
    empty = dataclasses.make_dataclass(
        "SearchSpec",
        [("shiny_new_knob", "int", dataclasses.field(default=1, metadata={"doc": " "}))],
        bases=(SearchSpec,),
        frozen=True,
    )
    with pytest.raises(ValueError, match=r"search\.shiny_new_knob: .*no doc"):
        config_reference({**_SECTIONS, "search": empty})


def test_every_choice_is_listed():
    lines = config_reference().splitlines()
    for key, choices in _CHOICES.items():
        rows = [line for line in lines if line.startswith(f"| `{key}` |")]
        assert len(rows) == 1, f"{key}: no row in the reference"
        for choice in choices:
            shown = "null" if choice is None else choice
            assert f"`{shown}`" in rows[0], f"{key}: choice {shown!r} not in the reference"


def test_example_job_loads(tmp_path):
    raw = yaml.safe_load(EXAMPLE_JOB)
    model = tmp_path / raw["model"]["path"]
    model.parent.mkdir(parents=True)
    model.write_text("")
    job = config_from_dict(raw, base_dir=tmp_path)
    assert job.model.path == model.resolve()
