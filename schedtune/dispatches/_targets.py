"""Group profiled dispatches into tuning targets: one per distinct root op, hottest first."""

from __future__ import annotations

import dataclasses
import hashlib

from ..families import expected_gain
from ..iree import DispatchTiming, per_call_ns
from ._analyze import Dispatch, RootOp


@dataclasses.dataclass(frozen=True)
class TuningTarget:
    """Dispatches that share one root op signature, hence one matcher and one config."""

    root: RootOp
    dispatches: tuple[str, ...]
    default_ns: float  # summed time of its dispatches in one model call
    share: float
    sources: tuple[str, ...] = ()  # source hash of each dispatch (what is fused around the root op)

    @property
    def key(self) -> str:
        return self.root.signature

    @property
    def dispatch_key(self) -> str:
        """The root op and every distinct dispatch it sits in: what a cached verdict is valid for."""
        return hashlib.sha256("\0".join([self.root.text, *sorted(set(self.sources))]).encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.root.family}_{self.root.shape_label}"


@dataclasses.dataclass(frozen=True)
class DispatchRow:
    """A profiled dispatch, for the report (tuned or not, and why)."""

    name: str
    family: str
    shape: str
    time_ns: float
    share: float
    target_key: str | None
    reason: str = ""
    scripted: bool = False  # its target is reached by transform scripts only (RootOp.script_only)


def find_targets(
    dispatches: dict[str, Dispatch],
    timings: dict[str, DispatchTiming],
    *,
    time_share: float,
    max_targets: int,
    scripts: bool = False,
) -> tuple[list[TuningTarget], list[DispatchRow]]:
    """Targets covering `time_share` of the model's time *as expected after tuning* (hottest
    first), and a row per dispatch.

    Each target's time is cut by its family's expected gain before the shares are taken: one
    dominant op (attention at 86% of a ViT block) would otherwise leave every other op below
    the cut, although once it is tuned they are most of the time.
    """
    per_call = per_call_ns(timings)
    total = sum(per_call.values()) or 1.0
    groups: dict[str, list[str]] = {}
    roots: dict[str, RootOp] = {}
    sources: dict[str, list[str]] = {}
    rows: list[DispatchRow] = []
    for name, ns in sorted(per_call.items(), key=lambda kv: -kv[1]):
        dispatch = dispatches.get(name)
        root = dispatch.root if dispatch else None
        if root is None or root.matcher is None:
            family = root.family if root else "unknown"
            rows.append(
                DispatchRow(name, family, root.shape_label if root else "", ns, ns / total, None, "no tunable root op")
            )
            continue
        if root.known_issue and not (scripts and root.script_only):
            rows.append(DispatchRow(name, root.family, root.shape_label, ns, ns / total, None, root.known_issue))
            continue
        groups.setdefault(root.signature, []).append(name)
        sources.setdefault(root.signature, []).append(dispatch.source_hash)
        known = roots.get(root.signature)
        if known is not None and known.matcher.dispatch_ops != root.matcher.dispatch_ops:
            # One transform script rebuilds one dispatch structure, not several.
            root = dataclasses.replace(root, matcher=dataclasses.replace(root.matcher, dispatch_ops=None))
        roots[root.signature] = root
        rows.append(
            DispatchRow(name, root.family, root.shape_label, ns, ns / total, root.signature, scripted=root.script_only)
        )
    for key, root in list(roots.items()):
        if root.known_issue and not root.script_only:  # its script went with the grouping above
            reason = f"{root.known_issue}; fused differently in its dispatches, so no one script rebuilds them"
            rows = [
                dataclasses.replace(r, target_key=None, reason=reason, scripted=False) if r.target_key == key else r
                for r in rows
            ]
            del groups[key], roots[key], sources[key]
    targets = [
        TuningTarget(
            roots[key],
            tuple(names),
            sum(per_call[n] for n in names),
            sum(per_call[n] for n in names) / total,
            tuple(sources[key]),
        )
        for key, names in groups.items()
    ]
    targets.sort(key=lambda t: -t.default_ns)
    expected = {t.key: t.default_ns / expected_gain(t.root.family) for t in targets}
    expected_total = total - sum(t.default_ns for t in targets) + sum(expected.values())
    chosen: list[TuningTarget] = []
    covered = 0.0
    for target in sorted(targets, key=lambda t: -expected[t.key]):
        if covered >= time_share or len(chosen) >= max_targets:
            break
        chosen.append(target)
        covered += expected[target.key] / expected_total
    chosen.sort(key=lambda t: -t.default_ns)
    chosen_keys = {t.key for t in chosen}
    rows = [
        r
        if r.target_key is None or r.target_key in chosen_keys
        else dataclasses.replace(r, reason="below the time-share cut")
        for r in rows
    ]
    return chosen, rows
