"""The CLI and the workspace it is pointed at: only `ingest` creates one, a damaged database is one line
and stays as it was, a user's mistake is one line and exit 2, machine formats carry every row, and what
a workspace holds is private to its owner.

Commands run in-process through `engine.cli.main.main`, or as `python -m engine.cli.main` where what is
checked is the process itself (which modules it loaded, what reached its stderr, its umask).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from engine.cli.main import main
from engine.store.workspace import DB_NAME
from tests.fixtures.traffic import write_jsonl
from tests.fixtures.workspace import RING, build_fixed_workspace

ROOT = Path(__file__).resolve().parents[2]

# Every verb but ingest, synth and demo, with the arguments it needs to get as far as the workspace.
VERBS = (
    ["status"], ["accounts"], ["rings"], ["families"], ["templates"], ["report", "--out", "{tmp}/r.md"],
    ["who-else", "a prompt"], ["embed"], ["scan"], ["marks"], ["export", "ring", "7"], ["tui"],
)


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of one in-process CLI run; argparse's own exits included."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, err: str, *says: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    for text in says:
        assert text in err, err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def master(tmp_path_factory) -> Path:
    return build_fixed_workspace(tmp_path_factory.mktemp("master") / "ws")


@pytest.fixture
def ws(master, tmp_path) -> Path:
    # copytree keeps mtimes, so the copy is what copyhound last closed and opens without a full check.
    return Path(shutil.copytree(master, tmp_path / "ws"))


def _verb(verb: list[str], tmp: Path) -> list[str]:
    return [part.replace("{tmp}", str(tmp)) for part in verb]


# ---------------------------------------------------------------------- finding 4: no accidental workspace
@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v[0])
def test_a_missing_workspace_is_one_line_and_is_not_created(verb, tmp_path, capsys):
    missing = tmp_path / "no-such-ws"
    code, out, err = run([*_verb(verb, tmp_path), "-w", str(missing)], capsys)
    assert_one_line(code, err, f"no workspace at {missing} (create one with copyhound ingest)")
    assert not missing.exists() and out == ""


def test_a_folder_without_a_database_is_not_a_workspace(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    code, _, err = run(["accounts", "-w", str(tmp_path / "notes")], capsys)
    assert_one_line(code, err, "no workspace at")
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["todo.txt"]


def test_model_verbs_stop_before_loading_a_model(tmp_path):
    # who-else, embed and scan used to create the workspace and load a model (25-60 s) before failing.
    script = ("import sys\nfrom engine.cli.main import main\n"
              f"codes = [main([*v, '-w', {str(tmp_path / 'missing')!r}, '-q']) for v in "
              "(['who-else', 'hi'], ['embed'], ['scan'], ['who-else', 'hi', '-e', 'static'])]\n"
              "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)\n"
              "print(codes, heavy)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[2, 2, 2, 2] []", proc.stdout + proc.stderr
    assert proc.stderr.count("no workspace at") == 4 and "Traceback" not in proc.stderr
    assert not (tmp_path / "missing").exists()


def test_ingest_creates_the_workspace(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [{"account_id": "a", "timestamp": "2026-01-01T00:00:00Z",
                                               "prompt": "hello"}])
    code, _, err = run(["ingest", str(src), "-w", str(tmp_path / "new" / "ws"), "-f", "json"], capsys)
    assert code == 0, err
    assert (tmp_path / "new" / "ws" / DB_NAME).is_file()


# ---------------------------------------------------------------------- finding 4: a damaged database
def _truncate(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 2)


def _zero_a_data_page(db: Path) -> None:
    """Zero 4 KiB at the start of the block that holds the exchanges table (a real page of rows)."""
    with duckdb.connect(str(db), read_only=True) as con:
        (block,) = con.execute("SELECT min(block_id) FROM pragma_storage_info('exchanges') "
                               "WHERE block_id >= 0").fetchone()
        (size,) = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()
    with open(db, "r+b") as fh:
        fh.seek(3 * 4096 + block * size)
        fh.write(b"\0" * 4096)


def _not_duckdb(db: Path) -> None:
    db.write_bytes(b'{"account_id": "a"}\n' * 5000)


DAMAGE = {"truncated": (_truncate, "it was cut short"), "zeroed page": (_zero_a_data_page, "checksum"),
          "not duckdb": (_not_duckdb, "not a valid DuckDB database")}


@pytest.mark.parametrize("damage", DAMAGE)
def test_every_command_reports_a_damaged_database_in_one_line_and_writes_nothing(damage, ws, tmp_path, capsys):
    spoil, says = DAMAGE[damage]
    db = ws / DB_NAME
    spoil(db)
    before = digest(db)
    src = write_jsonl(tmp_path / "more.jsonl", [{"account_id": "new", "timestamp": "2026-01-01T00:00:00Z",
                                                 "prompt": "a new prompt"}])
    for verb in (*VERBS, ["ingest", str(src)], ["ingest", str(src), "--on-error", "skip"]):
        code, out, err = run([*_verb(verb, tmp_path), "-w", str(ws)], capsys)
        assert_one_line(code, err, f"the workspace database {db} is damaged", says)
        assert digest(db) == before, f"{verb[0]} wrote into the damaged database"
    assert not list((ws / "exports").iterdir()) and not (tmp_path / "r.md").exists()


def test_ingest_into_a_zeroed_page_is_refused_as_a_subprocess(ws, tmp_path):
    # The reported case: `copyhound ingest` into a zero-patched file exited 0.
    _zero_a_data_page(ws / DB_NAME)
    before = digest(ws / DB_NAME)
    src = write_jsonl(tmp_path / "more.jsonl", [{"account_id": "new", "timestamp": "2026-01-01T00:00:00Z",
                                                 "prompt": "a new prompt"}])
    proc = subprocess.run([sys.executable, "-m", "engine.cli.main", "ingest", str(src), "-w", str(ws), "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is damaged" in proc.stderr, proc.stderr
    assert digest(ws / DB_NAME) == before


# ---------------------------------------------------------------------- finding 5: tracebacks become one line
@pytest.mark.parametrize("argv, says", [
    (["accounts", "--limit", "-1"], "--limit/-n: must be 0 (every row) or more, not -1"),
    (["rings", "--limit", "-1"], "--limit/-n: must be 0 (every row) or more, not -1"),
    (["templates", "--limit", "-1"], "--limit/-n: must be 0 (every row) or more, not -1"),
    (["families", "--limit", "-1"], "--limit/-n: must be 0 (every row) or more, not -1"),
    (["accounts", "--limit", "many"], "--limit/-n: not a whole number: 'many'"),
    (["report", "--top", "-1"], "--top: must be at least 1, not -1"),
    (["export", "ring", "abc"], "ring ids are numbers, not 'abc'"),
    (["report", "--out", "{tmp}/missing_dir/r.html"], "the folder {tmp}/missing_dir does not exist"),
    (["report", "--out", "{tmp}/ws/copyhound.duckdb/r.md"], "{tmp}/ws/copyhound.duckdb is not a folder"),
    (["scan", "--device", "bogus"], "--device: unknown device 'bogus': use cpu, cuda or cuda:N"),
    (["embed", "--device", "cuda:x"], "--device: unknown device 'cuda:x'"),
    (["who-else", "hi", "--device", "gpu"], "--device: unknown device 'gpu'"),
    (["tui", "--device", "bogus"], "--device: unknown device 'bogus'"),
    (["synth", "-n", "-5", "-o", "{tmp}/s.jsonl"], "--exchanges/-n: must be at least 1, not -5"),
])
def test_user_mistakes_are_one_line_and_exit_2(argv, says, ws, tmp_path, capsys):
    before = digest(ws / DB_NAME)
    code, out, err = run([*_verb(argv, tmp_path), "-w", str(ws)], capsys)
    assert_one_line(code, err, says.replace("{tmp}", str(tmp_path)))
    assert out == "" and digest(ws / DB_NAME) == before


def test_a_bad_device_in_the_environment_is_refused_at_parse_time(ws, monkeypatch, capsys):
    monkeypatch.setenv("COPYHOUND_DEVICE", "bogus")
    code, _, err = run(["status", "-w", str(ws)], capsys)
    assert_one_line(code, err, "unknown device 'bogus'")


def test_cuda_devices_are_accepted_by_the_parser():
    from engine.cli.main import build_parser

    for given in ("cpu", "cuda", "cuda:0", "cuda:3", "CUDA:1"):
        assert build_parser().parse_args(["status", "--device", given]).device == given.lower()


# ---------------------------------------------------------------------- finding 6: every row for machines
@pytest.fixture
def many(ws) -> Path:
    """The fixed workspace with 60 more scored accounts: 72 in all, more than a table's page of 50."""
    from engine.store.workspace import Store

    with Store(ws, create=False).connect() as con:
        con.executemany("INSERT INTO account_scores VALUES (?, ?, NULL, 'volume', '[]')",
                        [(f"acct-extra-{i:02d}", 0.01) for i in range(60)])
    return ws


def test_machine_formats_return_every_row_unless_limited(many, capsys):
    w = ["-w", str(many)]
    code, out, _ = run(["accounts", "-f", "jsonl", *w], capsys)
    assert code == 0 and len(out.splitlines()) == 72
    assert len(json.loads(run(["accounts", "-f", "json", *w], capsys)[1])) == 72
    assert len(run(["accounts", "-f", "csv", *w], capsys)[1].splitlines()) == 73  # with its header
    assert len(run(["accounts", "-f", "jsonl", "--limit", "5", *w], capsys)[1].splitlines()) == 5
    assert len(run(["accounts", "-f", "jsonl", "--min-score", "0.5", *w], capsys)[1].splitlines()) == len(RING)


def test_parquet_returns_every_row(many, capsysbinary):
    import pyarrow.parquet as pq

    assert main(["accounts", "-f", "parquet", "-w", str(many)]) == 0
    assert pq.read_table(io.BytesIO(capsysbinary.readouterr().out)).num_rows == 72


def test_a_table_shows_a_page_and_says_how_many_there_are(many, capsys):
    code, out, _ = run(["accounts", "-w", str(many)], capsys)
    assert code == 0
    assert sum("acct-" in line for line in out.splitlines()) == 50
    assert "showing 50 of 72 (--limit 0 for all)" in out
    code, out, _ = run(["accounts", "--limit", "0", "-w", str(many)], capsys)
    assert sum("acct-" in line for line in out.splitlines()) == 72 and "showing" not in out
    code, out, _ = run(["rings", "-w", str(many)], capsys)
    assert code == 0 and "showing" not in out  # one ring: the whole of it fits


def test_help_says_what_limit_does(capsys):
    code, out, _ = run(["accounts", "--help"], capsys)
    assert code == 0
    assert "first 50" in out and "every row" in out


def test_a_negative_limit_from_the_api_is_a_query_error(ws):
    from engine import Engine
    from engine.errors import QueryError

    with pytest.raises(QueryError, match="limit must be 0"):
        Engine(ws, create=False).accounts(limit=-1)
    assert Engine(ws, create=False).count("accounts") == 12


# ---------------------------------------------------------------------- finding 6: quiet, and the TUI's screen
def test_quiet_hides_the_model_loading_bar(ws):
    # who-else loads MiniLM (transformers draws "Loading weights" on stderr), then finds no MiniLM index.
    proc = subprocess.run([sys.executable, "-m", "engine.cli.main", "who-else", "hi", "-e", "minilm", "-w", str(ws),
                           "-q"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no index for all-MiniLM-L6-v2" in proc.stderr, proc.stderr
    assert "Loading weights" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_the_tui_keeps_log_lines_off_its_screen(ws):
    # The App's run is replaced by one that logs as the encoder warm-up does, and warns: none of it may
    # reach the terminal the TUI draws on; it goes to WORKSPACE/tui.log.
    script = ("import logging, warnings\nfrom tui.app import CopyhoundApp\nfrom engine.cli.main import main\n"
              "def fake_run(self):\n"
              "    logging.getLogger('engine.encoders.minilm').info('loaded all-MiniLM-L6-v2 on cpu')\n"
              "    warnings.warn('a library warning')\n"
              "    print('drawn', flush=True)\n"
              "CopyhoundApp.run = fake_run\n"
              f"raise SystemExit(main(['tui', '-w', {str(ws)!r}]))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "drawn\n" and "loaded" not in proc.stderr and "warning" not in proc.stderr, proc.stderr
    logged = (ws / "tui.log").read_text()
    assert "INFO engine.encoders.minilm: loaded all-MiniLM-L6-v2" in logged and "a library warning" in logged


# ---------------------------------------------------------------------- finding 6: private files
def test_the_workspace_is_private_under_a_permissive_umask(tmp_path):
    # Ingest (with a quarantined row), embed and scan, an export and the TUI's log, all under umask 022.
    src = write_jsonl(tmp_path / "in.jsonl", [
        *({"account_id": f"acct-{i % 5}", "timestamp": f"2026-01-0{1 + i % 9}T00:00:00Z",
           "prompt": f"explain step by step how to solve puzzle number {i % 7}"} for i in range(40)),
        "{not json",
    ])
    ws = tmp_path / "ws"
    script = (
        "import os\nos.umask(0o022)\n"
        "from engine.cli.main import main\nfrom engine import Engine\nfrom tests.fakes import FakeEncoder\n"
        f"assert main(['ingest', {str(src)!r}, '-w', {str(ws)!r}, '--on-error', 'skip', '-q']) == 0\n"
        f"engine = Engine({str(ws)!r}, encoder=FakeEncoder(), create=False)\n"
        "engine.scan()\n"
        "engine.analyst.export_evidence('account', 'acct-1')\n"
        "print(os.umask(0o022) & 0o077)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == str(0o077)  # the process's umask after opening a workspace
    found = [ws, *ws.rglob("*")]
    assert any(p.parent.name == "quarantine" for p in found) and any("exports" in p.parts for p in found)
    assert any(p.suffix == ".faiss" for p in found) and (ws / DB_NAME) in found
    loose = [f"{p.relative_to(tmp_path)} {stat.filemode(p.stat().st_mode)}" for p in found
             if p.stat().st_mode & 0o077]
    assert not loose, loose
