"""Retrieval for proposers: our own measured notes and the best configs of similar dispatches.

Keyword scoring over a few dozen short notes is enough here (and offline); embeddings would
only be worth their dependency if they ranked our own cases better, which is untested.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import re
from collections.abc import Iterable

import yaml

from ..store import attrs

NOTES = pathlib.Path(__file__).with_name("notes.yaml")
_WORD = re.compile(r"[a-z_0-9]+")


@dataclasses.dataclass(frozen=True)
class Note:
    id: str
    tags: tuple[str, ...]
    text: str


def load_notes(path: pathlib.Path = NOTES) -> list[Note]:
    return [
        Note(n["id"], tuple(n.get("tags", [])), " ".join(n["text"].split())) for n in yaml.safe_load(path.read_text())
    ]


def retrieve_notes(
    query_terms: Iterable[str], k: int = 3, notes: list[Note] | None = None, exclude_tags: set[str] = frozenset()
) -> list[Note]:
    """The `k` notes sharing most (idf-weighted) terms with the query; tags count double."""
    notes = notes if notes is not None else load_notes()
    notes = [n for n in notes if not set(n.tags) & exclude_tags]
    terms = {t.lower() for t in query_terms}
    docs = [(n, set(n.tags) | set(n.tags), set(_WORD.findall(n.text.lower()))) for n in notes]
    df: dict[str, int] = {}
    for _, tags, words in docs:
        for t in tags | words:
            df[t] = df.get(t, 0) + 1
    scored = []
    for note, tags, words in docs:
        score = sum(math.log(1 + len(docs) / df[t]) * (2 if t in tags else 1) for t in terms if t in tags or t in words)
        if "all" in tags:
            score += 0.5
        scored.append((score, note.id, note))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [n for score, _, n in scored[:k] if score > 0]


@dataclasses.dataclass(frozen=True)
class PastResult:
    label: str
    speedup: float
    config: dict


def similar_results(storage, family: str, loops: dict[str, int], k: int = 2, exclude: str = "") -> list[PastResult]:
    """Best configs of finished studies on the same op family, nearest loop sizes first.

    Distance is over log loop sizes of the roles both ops have, so 8x32x32 and 8x64x16
    convs are neighbours while a 1024 matmul is far from a 64 one.
    """
    import optuna

    out = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=True):
        label = summary.user_attrs.get(attrs.TARGET, "")
        if not label.startswith(f"{family}_") or summary.study_name == exclude or summary.best_trial is None:
            continue
        meta = summary.user_attrs.get(attrs.LOOPS)
        if not meta:
            continue
        other = json.loads(meta)
        common = [r for r in loops if r in other]
        if not common:
            continue
        dist = math.sqrt(sum((math.log2(max(loops[r], 1)) - math.log2(max(other[r], 1))) ** 2 for r in common))
        baseline = summary.user_attrs.get(attrs.DEFAULT_NS)
        best = summary.best_trial.value
        speedup = baseline / best if baseline and best else 1.0
        config = json.loads(summary.best_trial.user_attrs.get(attrs.CONFIG, "{}"))
        out.append((dist, PastResult(label, speedup, config)))
    out.sort(key=lambda d: d[0])
    return [r for _, r in out[:k]]
