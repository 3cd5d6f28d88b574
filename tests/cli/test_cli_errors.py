"""The CLI boundary: output cut short by the reader is not an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_a_closed_pipe_ends_quietly_with_status_zero():
    # A command printing far more than `head` reads: the reader closes the pipe mid-output.
    script = ("import sys; from engine.cli import main as cli\n"
              "cli.cmd_status = lambda args: [print('x' * 80) for _ in range(200_000)] and 0\n"
              "sys.exit(cli.main(['status', '-w', 'unused']))")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(100)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_bad_scan_settings_are_one_line_usage_errors(tmp_path, capsys):
    from engine.cli import main as cli

    for argv, says in ((["--spill", "x"], "--spill: not a number: 'x'"),
                       (["--spill", "3"], "--spill: must be between 0 and 2, not 3"),
                       (["--nprobe", "x"], "--nprobe: not a whole number: 'x'"),
                       (["--nprobe", "0"], "--nprobe: must be at least 1, not 0"),
                       (["--max-list", "x"], "--max-list: not a whole number: 'x'"),
                       (["--max-list", "5"], "--max-list: must be 0 (off) or at least 16, not 5")):
        with pytest.raises(SystemExit) as stop:
            cli.main(["scan", "-w", str(tmp_path / "ws"), *argv])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err
    assert not (tmp_path / "ws").exists()  # refused before anything is created
