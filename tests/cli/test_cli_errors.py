"""The CLI boundary: output cut short by the reader is not an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_closed_pipe_ends_quietly_with_status_zero():
    # A command printing far more than `head` reads: the reader closes the pipe mid-output.
    script = ("import sys; from engine import cli\n"
              "cli.cmd_status = lambda args: [print('x' * 80) for _ in range(200_000)] and 0\n"
              "sys.exit(cli.main(['status', '-w', 'unused']))")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(100)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err
