"""Shared by the export tests: a two-root dataset scanned into a fresh store per test."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from lookalike import scan
from lookalike.pipeline import ScanResult
from lookalike.store import Store
from lookalike.testing import write_dataset

KINDS = ["jpeg_quality", "resize", "brightness", "contrast", "gamma", "noise", "blur", "sharpen"]


def write_template(base: Path) -> Path:
    """Write the dataset once per module: train/images (3 groups) and val/images (1)."""
    write_dataset(
        base / "train" / "images",
        n_originals=3,
        variants_per_original=2,
        kinds=KINDS,
        n_distractors=2,
        n_hard_negatives=0,
        rng=21,
    )
    write_dataset(
        base / "val" / "images",
        n_originals=1,
        variants_per_original=1,
        kinds=KINDS,
        n_distractors=1,
        n_hard_negatives=0,
        rng=22,
    )
    return base


class Case:
    def __init__(self, base: Path) -> None:
        self.base = base
        # Two roots with the same folder name: the export layout must tell them apart.
        self.roots = [str(base / "train" / "images"), str(base / "val" / "images")]
        self.db = base / "store.db"
        self.result: ScanResult = scan(self.roots, db=self.db)
        self.store = Store(self.db)

    @classmethod
    def copy_of(cls, template: Path, base: Path) -> Case:
        shutil.copytree(template, base)
        return cls(base)

    def digests(self) -> dict[str, str]:
        """SHA-256 of every file under the roots and the quarantine, by content."""
        out = {}
        for folder in (self.base / "train", self.base / "val", self.base / "q"):
            for path in folder.rglob("*") if folder.exists() else []:
                if path.is_file() and not path.name.startswith("lookalike-manifest"):
                    out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return out


def members(case: Case) -> set[str]:
    """Every group member of the scan: what a quarantine moves without marks."""
    return {m.path for g in case.result.groups for m in g.members}
