"""The architecture rule, checked: tui -> engine -> index, never back; heavy imports stay lazy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_engine_loads_neither_textual_nor_torch():
    mods = _loaded_after("import engine")
    assert not {m for m in mods if m == "torch" or m.startswith(("torch.", "textual", "sentence_transformers"))}


def test_import_index_loads_neither_duckdb_nor_engine():
    mods = _loaded_after("import index")
    assert "duckdb" not in mods
    assert not {m for m in mods if m == "engine" or m.startswith("engine.")}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_packages_import_only_downstream():
    for path in (ROOT / "index").rglob("*.py"):
        assert not _imports(path) & {"engine", "tui", "duckdb", "textual", "torch"}, path
    for path in (ROOT / "engine").rglob("*.py"):
        assert not _imports(path) & {"tui", "textual"}, path
    tui = ROOT / "tui"
    assert tui.is_dir(), "the tui package is missing"
    for path in tui.rglob("*.py"):
        assert not _imports(path) & {"duckdb", "faiss", "index"}, path


def test_cli_reaches_the_tui_through_its_entry_point():
    # engine may not import tui, so `copyhound tui` resolves the front end from installed metadata.
    import pytest

    from engine.cli.analyst import load_frontend
    from engine.errors import CopyhoundError
    from tui.app import run

    assert load_frontend("tui") is run
    with pytest.raises(CopyhoundError, match="not installed"):
        load_frontend("no-such-frontend")
