"""Score a scan against ground truth (the ``truth.json`` format of lookalike's benchmark sets).

``truth.json`` holds ``images`` (paths relative to the truth file's folder),
``duplicate_groups`` (lists of paths), ``variant_of`` (variant path -> ``{"original",
"transform", "params"}``; combined transforms are joined with ``+``) and
``hard_negative_groups`` (look-alikes that are not duplicates).

Scores are over pairs: every pair of images inside one predicted group is a predicted
pair; every pair inside one truth group is a true pair.

Scanned paths and the truth's folder are compared with their folders' symbolic links
resolved (a file's own name is kept), so ``../shared`` may be a link.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputNotFoundError
from .records import Group


@dataclass(frozen=True)
class Truth:
    """Parsed ground truth, paths relative to ``base``."""

    base: Path
    images: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    variant_of: dict[str, dict[str, Any]]
    hard_negatives: tuple[tuple[str, ...], ...]
    source: str = ""  # the truth file, for messages


def load_truth(path: str | os.PathLike[str]) -> Truth:
    """Read a ``truth.json`` file.

    Raises:
        InputNotFoundError: the file does not exist.
        ConfigError: the file is not valid truth JSON.
    """
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"Truth file {str(path)!r} does not exist.")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return Truth(
            base=Path(os.path.realpath(p.parent)),
            images=tuple(data["images"]),
            groups=tuple(tuple(g) for g in data["duplicate_groups"]),
            variant_of=dict(data.get("variant_of", {})),
            hard_negatives=tuple(tuple(g) for g in data.get("hard_negative_groups", [])),
            source=os.fspath(path),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{str(path)!r} is not a truth file ({exc}); expected keys images, "
            "duplicate_groups, variant_of, hard_negative_groups."
        ) from exc


def transform_parts(transform: str) -> list[str]:
    """``'crop+jpeg_quality'`` -> ``['crop', 'jpeg_quality']``."""
    return [t for t in transform.split("+") if t]


def evaluate(
    groups: Sequence[Group],
    truth: Truth,
    *,
    exclude_transforms: Iterable[str] = (),
    scanned: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Precision, recall and F1 over pairs, recall per transform, hard negatives flagged.

    Variants whose transform involves any of ``exclude_transforms`` are left out entirely.
    ``scanned`` lists every featured file of the scan (default: the grouped files).

    Raises:
        ConfigError: no scanned file is one of the truth's images (the wrong folder).
    """
    _check_overlap(truth, scanned if scanned is not None else _grouped_paths(groups))
    excluded = set(exclude_transforms)
    universe = {
        img
        for img in truth.images
        if not excluded & set(transform_parts(truth.variant_of.get(img, {}).get("transform", "")))
    }
    predicted = _predicted_pairs(groups, truth.base, universe)
    true_pairs = _pairs_of(truth.groups, universe)
    tp = len(predicted & true_pairs)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(true_pairs) if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    negatives = _pairs_of(truth.hard_negatives, universe)
    flagged = negatives & predicted
    return {
        "images": len(universe),
        "excluded_transforms": sorted(excluded),
        "true_pairs": len(true_pairs),
        "predicted_pairs": len(predicted),
        "true_positives": tp,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "recall_by_transform": _recall_by_transform(truth, universe, predicted),
        "hard_negative_pairs": len(negatives),
        "hard_negatives_flagged": len(flagged),
        "hard_negative_rate": round(len(flagged) / len(negatives), 4) if negatives else 0.0,
        "false_positives": sorted([list(p) for p in predicted - true_pairs])[:50],
        "missed": sorted([list(p) for p in true_pairs - predicted])[:50],
    }


def scanned_files(store_path: str | os.PathLike[str]) -> list[str]:
    """Paths of the files the latest scan in a store featured (for ``evaluate(scanned=)``)."""
    from .store import Store

    with Store(store_path, readonly=True) as store:
        return [f["path"] for f in store.file_rows("ok")]


def _grouped_paths(groups: Sequence[Group]) -> list[str]:
    return [p for g in groups for p in (g.keeper, *(m.path for m in g.members))]


def _relative_to(base: Path) -> Callable[[str], str]:
    """A function: path -> relative to ``base``, with its folders' symlinks resolved."""
    real: dict[str, str] = {}

    def relative(path: str) -> str:
        folder, name = os.path.split(path)
        if folder not in real:
            real[folder] = os.path.realpath(folder)
        return os.path.relpath(os.path.join(real[folder], name), base)

    return relative


def _check_overlap(truth: Truth, scanned: Iterable[str]) -> None:
    paths = list(scanned)
    if not paths or not truth.images:
        return
    images = set(truth.images)
    relative = _relative_to(truth.base)
    if any(relative(p) in images for p in paths):
        return
    top = os.path.commonpath(truth.images) if truth.images else ""
    raise ConfigError(
        f"None of the {len(paths)} scanned files is an image of the truth file "
        f"{truth.source or str(truth.base)!r} (its paths are relative to {str(truth.base)!r}); "
        f"scan the folder it describes: {str(truth.base / top)!r}."
    )


def _predicted_pairs(
    groups: Sequence[Group], base: Path, universe: set[str]
) -> set[tuple[str, str]]:
    relative = _relative_to(base)
    sets = []
    for g in groups:
        paths = [g.keeper, *(m.path for m in g.members)]
        sets.append([relative(p) for p in paths])
    return _pairs_of(sets, universe)


def _pairs_of(groups: Iterable[Sequence[str]], universe: set[str]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for g in groups:
        members = sorted(p for p in g if p in universe)
        out.update(combinations(members, 2))
    return out


def _recall_by_transform(
    truth: Truth, universe: set[str], predicted: set[tuple[str, str]]
) -> dict[str, dict[str, float]]:
    found: dict[str, list[bool]] = defaultdict(list)
    for variant, info in truth.variant_of.items():
        if variant not in universe or info["original"] not in universe:
            continue
        hit = tuple(sorted((variant, info["original"]))) in predicted
        parts = transform_parts(info["transform"])
        for part in parts:
            found[part].append(hit)
        if len(parts) > 1:
            found["(combined)"].append(hit)
    return {
        name: {"recall": round(sum(hits) / len(hits), 4), "found": sum(hits), "total": len(hits)}
        for name, hits in sorted(found.items())
    }


def format_evaluation(scores: dict[str, Any]) -> str:
    """Human-readable table of :func:`evaluate` scores."""
    lines = [
        f"images {scores['images']}  true pairs {scores['true_pairs']}  "
        f"predicted pairs {scores['predicted_pairs']}",
        f"precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  f1 {scores['f1']:.4f}",
        f"hard-negative pairs flagged {scores['hard_negatives_flagged']}/"
        f"{scores['hard_negative_pairs']} ({scores['hard_negative_rate']:.2%})",
        "recall by transform:",
    ]
    for name, r in scores["recall_by_transform"].items():
        lines.append(f"  {name:<18} {r['recall']:.3f}  ({r['found']}/{r['total']})")
    return "\n".join(lines)
