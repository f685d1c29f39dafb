"""Turn a scan result into the documented JSON schema, CSV rows and a human summary.

The JSON document (``lookalike scan --json FILE``)::

    {
      "schema": "lookalike.scan/1",
      "roots": [ROOT, ...],
      "store": PATH,
      "images": N,                       # featured images
      "failures": [{"path", "stage", "error"}],
      "skipped": [{"path", "stage", "error"}],   # not images, symlinks, hidden...
      "groups": [{
          "id": N, "keeper": PATH, "keeper_root": ROOT, "relation": "exact|pixel|near",
          "roots": [ROOT, ...], "reclaimable_bytes": N,
          "members": [{"path", "relation", "score", "root", "size", "reference", "evidence"}]
      }],
      "pairs": [{"a": PATH, "b": PATH, "relation", "score", "evidence"}],
      "summary": {"groups": N, "duplicates": N, "groups_by_relation": {...},
                  "duplicates_by_relation": {...},
                  "reclaimable_bytes": N, "leakage": [{"roots": [R1, R2], "groups": N}]},
      "stats": {...},
      "warnings": [LINE, ...]            # e.g. an --include that selected no file
    }

``groups_by_relation`` counts each group once, under its loosest member's relation;
``duplicates_by_relation`` counts every member under its own relation to the keeper.

Every ``PATH`` is absolute. ``members`` never includes the keeper. ``score`` is a
similarity in [0, 1] (1.0 for exact and pixel duplicates).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import asdict
from itertools import combinations
from typing import Any

from .records import RELATIONS, Group

SCHEMA = "lookalike.scan/1"
CSV_FIELDS = (
    "group",
    "role",
    "action",
    "path",
    "root",
    "relation",
    "score",
    "size",
    "reference",
)


def leakage(groups: tuple[Group, ...] | list[Group]) -> list[dict[str, Any]]:
    """Count groups shared by each pair of roots (train/val/test leakage)."""
    counts: Counter[tuple[str, str]] = Counter()
    for g in groups:
        for pair in combinations(sorted(g.roots), 2):
            counts[pair] += 1
    return [{"roots": list(pair), "groups": n} for pair, n in sorted(counts.items())]


def summary(groups: tuple[Group, ...] | list[Group]) -> dict[str, Any]:
    """Totals over groups: groups and duplicates by relation, reclaimable bytes, leakage."""
    by_relation = Counter(g.relation for g in groups)
    members = Counter(m.relation for g in groups for m in g.members)
    return {
        "groups": len(groups),
        "duplicates": sum(len(g.members) for g in groups),
        "groups_by_relation": {r: by_relation.get(r, 0) for r in RELATIONS},
        "duplicates_by_relation": {r: members.get(r, 0) for r in RELATIONS},
        "reclaimable_bytes": sum(g.reclaimable_bytes for g in groups),
        "leakage": leakage(groups),
    }


def group_to_dict(g: Group) -> dict[str, Any]:
    """One group in the JSON schema."""
    return {
        "id": g.id,
        "keeper": g.keeper,
        "keeper_root": g.keeper_root,
        "keeper_size": g.keeper_size,
        "relation": g.relation,
        "roots": list(g.roots),
        "reclaimable_bytes": g.reclaimable_bytes,
        "members": [asdict(m) for m in g.members],
    }


def to_dict(result: Any) -> dict[str, Any]:
    """The whole scan result in the JSON schema of the module docstring."""
    return {
        "schema": SCHEMA,
        "roots": list(result.roots),
        "store": result.store_path,
        "images": result.images,
        "failures": [asdict(f) for f in result.failures],
        "skipped": [asdict(f) for f in result.skipped],
        "groups": [group_to_dict(g) for g in result.groups],
        "pairs": [asdict(p) for p in result.pairs],
        "summary": summary(result.groups),
        "stats": result.stats,
        "warnings": list(getattr(result, "warnings", ())),
    }


def to_json(result: Any) -> str:
    """JSON text of :func:`to_dict` (paths that are not valid UTF-8 are escaped)."""
    return json.dumps(to_dict(result), indent=2, sort_keys=False, default=str)


def csv_rows(groups: tuple[Group, ...] | list[Group]) -> list[dict[str, Any]]:
    """One row per file in a group: the keeper (``keep``) and each member (``remove``)."""
    rows = []
    for g in groups:
        rows.append(
            {
                "group": g.id,
                "role": "keeper",
                "action": "keep",
                "path": g.keeper,
                "root": g.keeper_root,
                "relation": "",
                "score": "",
                "size": g.keeper_size,
                "reference": "",
            }
        )
        for m in g.members:
            rows.append(
                {
                    "group": g.id,
                    "role": "member",
                    "action": "keep" if m.reference else "remove",
                    "path": m.path,
                    "root": m.root,
                    "relation": m.relation,
                    "score": m.score,
                    "size": m.size,
                    "reference": int(m.reference),
                }
            )
    return rows


def to_csv(groups: tuple[Group, ...] | list[Group]) -> str:
    """CSV text of :func:`csv_rows` with a header line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(groups):
        writer.writerow({k: _safe(v) for k, v in row.items()})
    return buf.getvalue()


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def human_size(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def relation_counts(counts: dict[str, int]) -> str:
    """``'0 exact, 2 pixel, 5 near'`` (``mirror`` only when there are some)."""
    return ", ".join(f"{counts[r]} {r}" for r in RELATIONS if counts.get(r) or r != "mirror")


def summary_text(result: Any, *, list_failures: bool = True) -> str:
    """The human summary printed by ``lookalike scan`` (``-q``: failures counted, not listed)."""
    s = summary(result.groups)
    lines = [
        f"Scanned {len(result.roots)} root(s): {result.images} images, "
        f"{len(result.failures)} failures, {len(result.skipped)} skipped.",
        f"Duplicate groups: {s['groups']} ({relation_counts(s['groups_by_relation'])}, by their "
        f"loosest member); {s['duplicates']} duplicates "
        f"({relation_counts(s['duplicates_by_relation'])}), "
        f"{human_size(s['reclaimable_bytes'])} reclaimable by removing them.",
    ]
    for item in s["leakage"]:
        a, b = (os.path.basename(r.rstrip(os.sep)) or r for r in item["roots"])
        lines.append(f"Leakage: {item['groups']} group(s) span {a} and {b}.")
    if not list_failures and result.failures:
        lines.append("(-q: failures are not listed; --json FILE holds them.)")
    for f in result.failures[:20] if list_failures else ():
        lines.append(f"Failed: {f.path}: {f.error}")
    if list_failures and len(result.failures) > 20:
        lines.append(f"... and {len(result.failures) - 20} more failures (see --json).")
    lines.append(f"Store: {result.store_path}")
    return "\n".join(lines)
