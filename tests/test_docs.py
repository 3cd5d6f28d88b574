"""The generated docs are current, and the README stays a user's document.

docs/benchmarks.md is regenerated in memory from bench/results/*.json and the README's command table from
the CLI's argparse parser; both must equal what is committed. The README and docs/*.md carry no commit
hashes and no first-person run history (those belong in bench/results/NOTES.md), except the git sha
column of the generated benchmark tables.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from bench import report
from engine.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_LIMIT = 12_000
# A run of 7-40 hex digits with at least one letter and one digit, not inside a longer word: what a
# commit hash looks like, and what a number or an English word is not.
HEX_RUN = re.compile(r"(?<![0-9A-Za-z_])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?![0-9A-Za-z_])")
FIRST_PERSON = re.compile(r"(?<![A-Za-z])(I |I'|I’)|(?<![A-Za-z])[Mm]y ")


def _commands_module():
    spec = importlib.util.spec_from_file_location("docs_commands", ROOT / "docs" / "commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _without_sha_columns(text: str) -> str:
    """Markdown text with every table column headed 'git sha' blanked."""
    out, sha_col = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            sha_col = None
            out.append(line)
            continue
        cells = line.strip().strip("|").split(" | ")
        if sha_col is None:
            headers = [c.strip() for c in cells]
            sha_col = headers.index("git sha") if "git sha" in headers else -1
        elif sha_col >= 0 and sha_col < len(cells):
            cells[sha_col] = ""
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def test_benchmarks_md_is_current():
    expected = report.render(report.load_results())
    assert (ROOT / "docs" / "benchmarks.md").read_text() == expected, "run: python -m bench.report"


def test_benchmarks_rows_name_their_file_machine_and_sha():
    text = report.render(report.load_results())
    for name, _ in report.load_results():
        assert f"`{name}`" in text


def test_readme_command_table_is_current():
    commands = _commands_module()
    text = README.read_text()
    start, end = text.index(commands.START), text.index(commands.END) + len(commands.END)
    assert text[start:end] == commands.table(build_parser()), "run: python docs/commands.py --write"


def test_readme_command_table_names_every_subcommand():
    commands = _commands_module()
    block = commands.table(build_parser())
    for name, _, _ in commands._subcommands(build_parser()):
        assert f"`copyhound {name}" in block


def test_readme_is_short():
    assert len(README.read_text()) <= README_LIMIT


def test_readme_test_command_is_what_ci_runs():
    # The README's second command block is the test command; .ci/run must run exactly it.
    blocks = re.findall(r"```bash\n(.*?)\n```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    assert "copyhound demo" in blocks[0]
    assert blocks[1] in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.parametrize("path", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_no_commit_hashes_or_first_person(path: Path):
    text = path.read_text()
    if path.name == "benchmarks.md":
        text = _without_sha_columns(text)
    assert not HEX_RUN.findall(text), f"commit-like hashes in {path.name}"
    lines = [line for line in text.splitlines() if FIRST_PERSON.search(line)]
    assert not lines, f"first person in {path.name}: {lines[:3]}"
