"""IREE's default config is a legal point of every target's space, whatever the family's file
lists: the baseline is trial 0 of every search, and the neighbourhood skeleton holds it."""

from __future__ import annotations

import json

import optuna
import pytest

from schedtune import iree
from schedtune.config import load_config
from schedtune.families import FAMILIES
from schedtune.proposers import HeuristicProposer, ProposalRequest, default_values
from schedtune.spaces import load_space
from schedtune.store import attrs

from .conftest import DATA, mlir_job, run_tune, target_of

IM2COL = ("--iree-global-opt-use-im2col-for-convs",)

# (model, family, extra flags): one or more ops per family, chosen where the family's file
# cannot express IREE's choice (the comment says what it is).
CASES = [
    ("matmul.mlir", "matmul", ()),
    ("matmul_row.mlir", "matmul", ()),  # m = 1: distribution 0, vector n = 10
    ("conv1x1_nchw.mlir", "matmul", ()),  # two m loops
    ("conv1x1_nchw.mlir", "matmul", IM2COL),  # vector 1 on a batch loop that reads as n
    ("conv_rgb_stem.mlir", "matmul", IM2COL),  # and a k of 27
    ("conv_rgb_stem.mlir", "conv2d", ()),
    ("conv_batch1.mlir", "conv2d", ()),  # distribution 0 on the unit batch
    ("depthwise_nchw.mlir", "depthwise", ()),  # DoubleTilingExpert, vector kw 16 on a 3-tap row
    ("depthwise_nhwc.mlir", "depthwise", ()),
    ("pool_nchw.mlir", "pooling", ()),  # ConvTileAndDecomposeExpert, channels read as a batch loop
    ("row_centre.mlir", "reduction", ()),
    ("attention.mlir", "attention", ()),
    ("matmul.mlir", "mmt4d", ("--iree-global-opt-data-tiling",)),
]


def test_every_family_has_a_case():
    assert {family for _, family, _ in CASES} == {f.name for f in FAMILIES}


@pytest.mark.parametrize(("model", "family", "flags"), CASES, ids=[f"{m}-{f}-{len(x)}" for m, f, x in CASES])
def test_default_config_is_a_legal_point(model, family, flags, tmp_path):
    target = target_of(DATA / model, tmp_path, family, flags)
    default = target.root.default_config
    assert default is not None
    space = load_space(family).admitting(target.root)
    assert space.check_config(default, target.root) == []
    request = ProposalRequest(target, space, iree.host_cpu_features(), None)
    first = HeuristicProposer().propose(request).skeletons[0]
    assert first.name == "near-default"
    values = default_values(first, request)
    assert values is not None, f"{default.to_json()} is not a point of {first.to_json()}"
    assert first.config(values, [*space.admitted_loops]).canonical() == default.canonical()
    # The neighbourhood is more than the one point: the search can move away from it.
    assert first.knobs()


def test_admitting_changes_nothing_else():
    """The admitted values belong to one op: the family's space is unchanged for the next."""
    assert load_space("depthwise").admitted is None
    assert "DoubleTilingExpert" in load_space("depthwise").pipelines


def test_search_starts_from_the_default_where_the_file_cannot_express_it(tmp_path):
    """NCHW depthwise: IREE's DoubleTilingExpert config with a vector tile of 16 on a 3-tap
    filter row. Trial 0 of the real search is that config, compiled and timed."""
    config = mlir_job(tmp_path, "dw", DATA / "depthwise_nchw.mlir", ("2x16x18x18xf32", "16x3x3xf32"), 3)
    proc = run_tune(config)
    assert proc.returncode == 0, proc.stderr
    job = load_config(config)
    summary = json.loads((job.report_dir / "summary.json").read_text())
    (row,) = summary["dispatches"]
    assert row["op_kind"] == "depthwise" and row["baseline_ns"], row
    (study,) = [s for s in optuna.get_all_study_summaries(job.storage) if s.study_name.startswith("dw:")]
    first = optuna.load_study(study_name=study.study_name, storage=job.storage).trials[0]
    assert json.loads(first.user_attrs[attrs.CONFIG]) == row["default_config"]
    assert first.user_attrs.get(attrs.STATUS, "ok") == "ok" and first.value is not None
