"""The architecture rules, checked: tui -> engine -> index and service -> engine, never back; synth apart;
each engine wing imports only what its job needs; heavy imports stay lazy; no module grows past ~500 lines
unnoticed.

Import rules read every import statement, function-level ones included (tests/fixtures/imports.py).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fixtures.imports import ROOT, Import, Project, is_stdlib

PROJECT = Project()
MAX_LINES = 500
# A module over MAX_LINES says why near its top (docstring or comment) with one of these phrases.
WHOLE_MARKS = ("stays whole", "kept whole")
WHOLE_MARK_WITHIN = 40  # lines


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_engine_loads_neither_textual_nor_torch():
    mods = _loaded_after("import engine")
    heavy = ("torch.", "textual", "sentence_transformers")
    assert not {m for m in mods if m == "torch" or m.startswith(heavy)}


def test_import_engine_loads_no_web_stack():
    mods = _loaded_after("import engine")
    assert not {m for m in mods if m.split(".")[0] in {"service", "starlette", "uvicorn", "httpx"}}


def test_import_index_loads_neither_duckdb_nor_engine():
    mods = _loaded_after("import index")
    assert "duckdb" not in mods
    assert not {m for m in mods if m == "engine" or m.startswith("engine.")}


def test_import_synth_loads_no_other_package_of_the_project():
    mods = _loaded_after("import synth")
    assert not {m for m in mods if m.split(".")[0] in {"engine", "index", "tui", "duckdb", "torch", "faiss"}}


def _breaking(imports: list[Import], forbidden_top: set[str] = frozenset(),
              forbidden: tuple[str, ...] = ()) -> list[str]:
    """The imports whose top-level package is in `forbidden_top` or whose module lies in `forbidden`."""
    return [str(i) for i in imports if i.top in forbidden_top or i.within(*forbidden)]


def _of(*modules: str) -> list[Import]:
    """Every import made by the modules `modules` name, or by modules inside them."""
    return [i for i in PROJECT.imports() if i.made_in(*modules)]


def test_index_knows_numpy_and_faiss_only():
    assert not _breaking(_of("index"), {"engine", "tui", "synth", "duckdb", "textual", "torch"})


def test_synth_stands_apart_on_numpy():
    assert not _breaking(_of("synth"), {"engine", "index", "tui"})
    # Loading synth must stay cheap: beyond the standard library, numpy only until a function asks.
    assert not [str(i) for i in _of("synth")
                if i.runtime_top_level and not is_stdlib(i.top) and i.top not in {"numpy", "synth"}]


def test_engine_never_imports_the_front_end():
    assert not _breaking(_of("engine"), {"tui", "textual"})


def test_engine_never_imports_the_service():
    assert not _breaking(_of("engine"), {"service", "starlette", "uvicorn", "httpx"})


def test_service_goes_through_the_engine():
    # The HTTP layer stays thin: storage, vectors and the model are the engine's business.
    assert (ROOT / "service").is_dir(), "the service package is missing"
    assert not _breaking(_of("service"), {"duckdb", "faiss", "index", "torch", "tui", "textual", "synth"})


def test_tui_goes_through_the_engine():
    assert (ROOT / "tui").is_dir(), "the tui package is missing"
    assert not _breaking(_of("tui"), {"duckdb", "faiss", "index"})


def test_encoders_know_no_storage_and_no_pipeline():
    forbidden = ("engine.store", "engine.scan", "engine.query", "engine.cli", "engine.ingest")
    assert not _breaking(_of("engine.encoders"), {"duckdb"}, forbidden)


def test_query_side_never_reaches_into_the_scan():
    assert not _breaking(_of("engine.query"), forbidden=("engine.scan",))


def test_only_the_cli_parses_arguments():
    outside = [i for i in PROJECT.imports() if not i.made_in("engine.cli")]
    assert not _breaking(outside, {"argparse"})


def test_the_rules_see_function_level_imports():
    # The walker must not read module level only: a lazy import is an import all the same.
    lazy = [i for i in PROJECT.imports("engine") if not i.runtime_top_level]
    assert any(i.top == "torch" for i in lazy), "engine's lazy torch import was not seen"


def _long_modules() -> list[str]:
    offenders = []
    for path in sorted(p for pkg in (*PROJECT.packages, "bench") for p in (ROOT / pkg).rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        top = "\n".join(lines[:WHOLE_MARK_WITHIN]).lower()
        if len(lines) > MAX_LINES and not any(mark in top for mark in WHOLE_MARKS):
            offenders.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    return offenders


def test_long_modules_say_why_they_stay_whole():
    offenders = _long_modules()
    assert not offenders, (
        f"modules over {MAX_LINES} lines: split them, or say near the top why one stays whole "
        f"(a comment containing one of {WHOLE_MARKS}): " + ", ".join(offenders))


def test_the_service_is_declared_as_a_front_end():
    # engine may not import service, so `copyhound serve` resolves it by entry point, as the TUI: the
    # installed metadata can predate the service (an editable install made before it), pyproject cannot.
    import tomllib
    from importlib import import_module

    from service.app import run

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["copyhound.frontends"]
    module, _, name = declared["serve"].partition(":")
    assert getattr(import_module(module), name) is run


def test_cli_reaches_the_tui_through_its_entry_point():
    # engine may not import tui, so `copyhound tui` resolves the front end from installed metadata.
    from engine.cli.analyst import load_frontend
    from engine.errors import CopyhoundError
    from tui.app import run

    assert load_frontend("tui") is run
    with pytest.raises(CopyhoundError, match="not installed"):
        load_frontend("no-such-frontend")
