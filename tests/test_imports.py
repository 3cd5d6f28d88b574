"""No import circle anywhere in engine/, index/, synth/, tui/ or service/, not even through a function-level import.

The graph has an edge for every import statement between project modules (module level or inside a
function, absolute or relative, ``from a import b`` where ``b`` is a submodule), plus an edge to each
package whose ``__init__`` the import runs (tests/fixtures/imports.py says which).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.fixtures.imports import ROOT, Project, circles, cycle_in

PROJECT = Project()


def _explain(project: Project, graph: dict[str, set[str]], component: set[str]) -> str:
    cycle = cycle_in(graph, component)
    steps = []
    for a, b in zip(cycle, cycle[1:], strict=False):
        lines = sorted({i.line for i in project.module_imports(a) if i.within(b)})
        steps.append(f"  {a} -> {b} (line {', '.join(map(str, lines))})")
    return (f"import circle among {len(component)} modules ({', '.join(sorted(component))}); one cycle:\n"
            + "\n".join(steps))


def test_no_import_circle():
    graph = PROJECT.graph()
    found = circles(graph)
    assert not found, "\n".join(_explain(PROJECT, graph, c) for c in found)


def test_graph_covers_every_package():
    names = set(PROJECT.graph())
    for package in ("engine", "engine.store", "engine.cli.main", "index", "synth", "tui", "tui.app", "service.app"):
        assert package in names


def test_tests_and_bench_need_no_path_hacks():
    # tests/ and bench/ are packages reached from the repository root (pytest's `pythonpath`, `python -m`).
    hack = re.compile(r"sys\.path\.(insert|append)")
    files = [p for folder in ("tests", "bench") for p in sorted((ROOT / folder).rglob("*.py"))
             if p != Path(__file__).resolve()]
    found = [f"{p.relative_to(ROOT)}:{n}" for p in files
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if hack.search(line)]
    assert not found


def test_every_bench_script_imports_as_a_module():
    names = sorted(f"bench.{p.stem}" for p in (ROOT / "bench").glob("*.py") if p.stem != "__init__")
    assert "bench.scale" in names
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)"
    run = subprocess.run([sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def _write(root: Path, files: dict[str, str]) -> Project:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Project(root, ("pkg",))


def test_walker_finds_circles_hidden_in_functions_relative_imports_and_inits(tmp_path):
    project = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def later():\n    from pkg.sub import e\n",          # function level, submodule
        "pkg/sub/__init__.py": "from .. import a\n",                        # relative, from a package
        "pkg/sub/e.py": "",
        "pkg/c.py": "import pkg.sub.e\n",                                   # runs pkg/sub/__init__ too
        "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n",
    })
    graph = project.graph()
    assert graph["pkg.a"] == {"pkg.sub.e", "pkg.sub"}
    assert graph["pkg.sub"] == {"pkg.a"}
    assert graph["pkg.c"] == {"pkg.sub.e", "pkg.sub"}
    assert graph["pkg.d"] == {"pkg.c"}
    assert [sorted(c) for c in circles(graph)] == [["pkg.a", "pkg.sub"]]
    assert cycle_in(graph, {"pkg.a", "pkg.sub"}) == ["pkg.a", "pkg.sub", "pkg.a"]
    lazy = [i for i in project.module_imports("pkg.a")]
    assert [(i.target, i.runtime_top_level) for i in lazy] == [("pkg.sub.e", False)]
    assert [i.runtime_top_level for i in project.module_imports("pkg.d")] == [True, False]


def test_walker_ignores_a_module_importing_its_own_package_init_implicitly(tmp_path):
    # pkg/__init__ imports pkg.a, which imports pkg.b: pkg is already being imported, so no edge back to it.
    project = _write(tmp_path, {
        "pkg/__init__.py": "from pkg.a import f\n",
        "pkg/a.py": "from pkg.b import g\n\ndef f():\n    return g\n",
        "pkg/b.py": "def g():\n    pass\n",
    })
    assert not circles(project.graph())
    # ... but naming the package itself needs its __init__ finished: that is a circle.
    (tmp_path / "pkg/b.py").write_text("from pkg import f\n", encoding="utf-8")
    assert [sorted(c) for c in circles(Project(tmp_path, ("pkg",)).graph())] == [["pkg", "pkg.a", "pkg.b"]]
