"""A small real workspace (the real model, DuckDB and FAISS, a real scan) and the real service over it.

The workspace is the copy ring of `tests.fixtures.traffic.ring_traffic`: six accounts pasting twelve
perturbed prompts each among sixty organic accounts; the scan finds them as one ring. The service runs in
its own process (`tests.service.server`, what `copyhound serve` runs), on a free port, and is called
over HTTP with httpx.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from engine.ingest.fingerprint import normalize
from tests.fixtures.corpora import sample_corpora
from tests.fixtures.imports import ROOT
from tests.fixtures.traffic import scanned_ring_workspace

TOKEN = "test-token-0123"
MAX_BODY = 64 * 1024
# Generous: the service process loads torch and the model, on a machine that may be busy.
START_DEADLINE = 300.0


class Served:
    """The service in its own process; `url` once it listens; `stop()` interrupts it as Ctrl-C would."""

    def __init__(self, workspace: Path, log: Path, **config) -> None:
        self.log = log
        self.token = config.get("token")
        self._out = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.service.server", json.dumps({"workspace": str(workspace), **config})],
            cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT)
        self.url = self._wait_for_port()
        self._wait_until_ready()

    def client(self, token: str | None = "default") -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)

    def health(self) -> dict:
        return httpx.get(f"{self.url}/v1/health", timeout=60.0).json()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def _wait_for_port(self) -> str:
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if "listening on http://" in line:
                    return line.split("listening on ", 1)[1].split()[0]
            if self.proc.poll() is not None:
                pytest.fail(f"the service exited with status {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.2)
        pytest.fail(f"the service did not listen within {START_DEADLINE:.0f} s:\n{self.tail()}")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=10.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                pytest.fail(f"the service exited with status {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.5)
        pytest.fail(f"the service was not ready within {START_DEADLINE:.0f} s:\n{self.tail()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="session")
def organic() -> list[str]:
    texts = sample_corpora({"alpaca_5k.jsonl.gz": 100, "sharegpt_first_turns.jsonl.gz": 100}, seed=5, min_len=40)
    return list(dict.fromkeys(normalize(t) for t in texts))


@pytest.fixture(scope="module")
def served_workspace(tmp_path_factory, real_encoder, organic) -> Path:
    return scanned_ring_workspace(tmp_path_factory.mktemp("serve"), real_encoder, organic)


@pytest.fixture(scope="module")
def server(served_workspace, tmp_path_factory):
    """The service with a bearer token and a 64 KiB body limit."""
    with Served(served_workspace, tmp_path_factory.mktemp("serve-log") / "service.log", token=TOKEN,
                max_body=MAX_BODY) as served:
        yield served
