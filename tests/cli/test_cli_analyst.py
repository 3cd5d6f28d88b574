"""`copyhound marks` and `copyhound export` (engine.cli.analyst), run through an argparse parser."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from engine.cli.analyst import add_commands
from tests.fixtures.workspace import RING, build_fixed_workspace


def _run(argv: list[str]) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", "-w")
    common.add_argument("--quiet", "-q", action="store_true")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", "-f", default="table")
    parser = argparse.ArgumentParser(prog="copyhound")
    add_commands(parser.add_subparsers(dest="command", required=True), common, fmt)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def ws(tmp_path) -> Path:
    master = tmp_path / "master"
    build_fixed_workspace(master)
    shutil.copytree(master, tmp_path / "ws")
    return tmp_path / "ws"


def test_marks_add_then_list_as_json(ws, capsys):
    assert _run(["marks", "account", RING[0], "--label", "suspicious", "--note", "six shared questions",
                 "-w", str(ws), "-f", "json"]) == 0
    capsys.readouterr()
    assert _run(["marks", "-w", str(ws), "-f", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["target_id"], r["label"], r["note"]) for r in rows] == [(RING[0], "suspicious", "six shared questions")]


def test_export_prints_the_bundle_path(ws, capsys):
    assert _run(["export", "ring", "7", "-w", str(ws), "-f", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("target_kind,target_id,path")
    path = Path(out[1].split(",")[2])
    assert path.is_dir() and (path / "evidence.json").exists()
