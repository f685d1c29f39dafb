"""The package promise: cheap import, curated API, no heavy optional dependency by default."""

from __future__ import annotations

import subprocess
import sys

import lookalike


def test_exported_members_are_sorted_and_resolve() -> None:
    assert lookalike.__all__ == sorted(lookalike.__all__)
    for name in lookalike.__all__:
        assert getattr(lookalike, name) is not None


def test_import_is_cheap_and_pulls_no_optional_dependency() -> None:
    code = (
        "import sys, lookalike; "
        "heavy = {'numpy', 'cv2', 'faiss', 'PIL', 'torch', 'dask', 'distributed', 'onnxruntime'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scan_pulls_no_deep_learning_or_cluster_framework(dataset, tmp_path) -> None:
    code = (
        "import sys, lookalike; "
        f"lookalike.scan([{str(dataset.root)!r}], db={str(tmp_path / 's.db')!r}); "
        "print(sorted({'torch', 'tensorflow', 'dask', 'distributed', 'onnxruntime'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_console_script_help_works() -> None:
    out = subprocess.run(["lookalike", "--help"], capture_output=True, text=True, check=True)
    assert "scan" in out.stdout and "eval" in out.stdout
