"""Layering: no module of the TUI imports duckdb, faiss or the index package (it goes through engine)."""

from __future__ import annotations

import ast
from pathlib import Path

TUI = Path(__file__).resolve().parents[2] / "tui"
FORBIDDEN = {"duckdb", "faiss", "index", "torch"}


def test_tui_never_imports_the_storage_layers():
    offenders = []
    for path in TUI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_tcss_is_shipped_beside_the_app():
    assert (TUI / "app.tcss").exists()
