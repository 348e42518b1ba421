"""The op-family registry: one class per family, each with its space; statuses and their budget."""

from __future__ import annotations

import pytest

from schedtune.families import FAMILIES, get_family
from schedtune.spaces import load_space
from schedtune.store import TrialStatus, spends_budget

from .conftest import DATA, target_of


def test_every_family_has_a_space_and_a_unique_name():
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    for family in FAMILIES:
        space = load_space(family.name)
        assert space is not None and space.family == family.name
        assert family.expected_gain >= 1.0 and family.prompt_notes
    assert get_family("other") is None


def test_families_recognise_their_root_ops(tmp_path):
    matmul = target_of(DATA / "matmul.mlir", tmp_path / "mm", "matmul")
    assert [loop.role for loop in matmul.root.loops] == ["m", "n", "k"]
    assert matmul.root.matcher.kind == "contraction" and matmul.root.known_issue is None
    conv = target_of(DATA / "conv_batch1.mlir", tmp_path / "conv", "conv2d")
    assert {"oh", "ow", "oc", "ic", "kh", "kw"} <= {loop.role for loop in conv.root.loops}
    assert conv.root.matcher.kind == "convolution"
    assert "batch-1" in conv.root.known_issue  # the family knows IREE drops a spec on it


def test_only_measured_outcomes_spend_budget():
    free = {s for s in TrialStatus if not s.spends_budget}
    assert free == {
        TrialStatus.CONSTRAINT,
        TrialStatus.DUPLICATE,
        TrialStatus.IN_PROGRESS,
        TrialStatus.OVER_BUDGET,
        TrialStatus.LOST,
        TrialStatus.INVALID,
    }
    assert spends_budget("wrong_result") and spends_budget("compile_timeout")
    assert not spends_budget(None) and not spends_budget("lost")
    assert TrialStatus.of_compile("timeout") is TrialStatus.COMPILE_TIMEOUT


@pytest.mark.parametrize(
    ("element_type", "size"),
    [("f32", 4), ("bf16", 2), ("f16", 2), ("i8", 1), ("ui8", 1), ("si32", 4), ("i1", 1), ("f8E4M3FN", 1), ("index", 8)],
)
def test_element_bytes_reads_mlir_element_types(element_type, size):
    """Vector limits and input sizes rest on it: bf16 and unsigned types once read as 8 bytes."""
    from schedtune.families import element_bytes

    assert element_bytes(element_type) == size
