"""The incoming folder: exchanges the service checked, waiting for `copyhound ingest`.

`Exchange.checked` holds one exchange to the rules the loader applies to a row (engine.ingest.staging:
required fields, control characters in the account id, the accepted time range, the prompt's length and
junk check, all from engine.config), so a line written here is never a bad row at ingest; what breaks
a rule is refused at once with the loader's reason, in one line.

`IncomingLog` appends each exchange as one JSON line in the format `ingest` reads (`exchange_id`,
`account_id`, `timestamp` in ISO 8601 UTC, `prompt`) to WORKSPACE/incoming/serve-YYYYMMDD.jsonl (the
UTC day it arrived). The line is written to the file before `append` returns, so an answered check
survives a crash of the service. With `sync_every=0` it is also fsynced first (it survives a crash of
the machine); otherwise a background thread fsyncs the file every `sync_every` seconds while lines
arrive, because an fsync waits for the disk, and while a scan writes the workspace on the same disk that
can be tens of milliseconds, more than a gateway check may take: a machine crash can then lose the last
`sync_every` seconds of checked exchanges (the gateway's own log still has them). Concurrent appends
share one write (`engine.batches.Coalescer`). A line cut short by a crash was
never answered: it is cut off when the file is next opened, so the file always ingests cleanly.
Re-ingesting a file that has grown loads only its new lines (exchange ids are anti-joined).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from engine.batches import Coalescer
from engine.config import EARLIEST_TIMESTAMP, FUTURE_SLACK_SECONDS, MAX_FIELD_CHARS, MAX_PROMPT_CHARS
from engine.errors import QueryError, ResourceError
from engine.ingest.fingerprint import junk_reason
from engine.ingest.staging import CONTROL
from index.io import fsync_dir

log = logging.getLogger(__name__)

FOLDER = "incoming"
_EARLIEST = datetime.fromisoformat(EARLIEST_TIMESTAMP)
# Epoch numbers past this are milliseconds, as the loader reads them.
_MILLIS_FROM = 1e11


@dataclass(frozen=True)
class Exchange:
    """One exchange as the service received it: `ts` is naive UTC, as DuckDB stores TIMESTAMP."""

    account_id: str
    prompt: str
    ts: datetime

    @classmethod
    def checked(cls, account_id: str, prompt: str, timestamp: str | float | None = None,
                now: datetime | None = None) -> Exchange:
        """The exchange, or QueryError naming the first rule it breaks (the loader's wording)."""
        now = now or datetime.now(UTC).replace(tzinfo=None)
        if not account_id.strip():
            raise QueryError("missing field account_id")
        if len(account_id) > MAX_FIELD_CHARS:
            raise QueryError(f"field account_id too large ({len(account_id)} characters; limit {MAX_FIELD_CHARS})")
        if CONTROL.search(account_id):
            raise QueryError(f"account_id {CONTROL.sub('?', account_id[:60])!r} holds a control character")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise QueryError(f"prompt too long ({len(prompt)} characters; limit {MAX_PROMPT_CHARS})")
        junk = junk_reason(prompt)
        if junk:
            raise QueryError(junk)
        ts = now if timestamp is None else parse_timestamp(timestamp)
        latest = now + timedelta(seconds=FUTURE_SLACK_SECONDS)
        if not _EARLIEST <= ts <= latest:
            raise QueryError(f"timestamp {str(timestamp)[:40]!r} out of range (read as {ts} UTC; accepted: "
                             f"{EARLIEST_TIMESTAMP} to a day from now; epoch numbers are seconds, or "
                             "milliseconds past 1e11)")
        return cls(account_id, prompt, ts)

    def row(self, exchange_id: str) -> dict:
        """The exchange as an ingest row."""
        return {"exchange_id": exchange_id, "account_id": self.account_id,
                "timestamp": self.ts.isoformat(timespec="microseconds") + "Z", "prompt": self.prompt}


def parse_timestamp(value: str | float) -> datetime:
    """ISO 8601 (an offset, or UTC when none) or epoch seconds (milliseconds past 1e11) -> naive UTC."""
    if isinstance(value, bool):
        raise QueryError(f"unparseable timestamp {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise QueryError(f"unparseable timestamp {value!r}")
        if abs(seconds) > _MILLIS_FROM:
            seconds /= 1000
        try:
            return datetime(1970, 1, 1) + timedelta(seconds=seconds)
        except OverflowError:
            raise QueryError(f"timestamp {value!r} out of range") from None
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"unparseable timestamp {text[:40]!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def new_exchange_id() -> str:
    """An id no other exchange has: ingest keeps it, so re-ingesting the line adds nothing."""
    return f"serve-{uuid.uuid4().hex}"


class IncomingLog:
    """Appends exchanges to WORKSPACE/incoming/serve-YYYYMMDD.jsonl, one fsynced JSON line each."""

    def __init__(self, folder: Path, *, max_batch: int = 256, sync_every: float = 0.0) -> None:
        self.folder = Path(folder)
        self.sync_every = max(0.0, float(sync_every))
        self._fd: int | None = None
        self._day: date | None = None
        self._path: Path | None = None
        self._lock = threading.Lock()  # the file handle: the coalescer runs one batch at a time already
        self._append = Coalescer(self._write, max_batch=max_batch)
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._syncer: threading.Thread | None = None
        if self.sync_every > 0:
            self._syncer = threading.Thread(target=self._sync_loop, name="copyhound-incoming-sync", daemon=True)
            self._syncer.start()

    @property
    def path(self) -> Path:
        """Where today's exchanges go."""
        return self.folder / f"serve-{datetime.now(UTC):%Y%m%d}.jsonl"

    def append(self, row: dict) -> Path:
        """Append one row and return once it is in the file (and on disk with `sync_every=0`); returns the
        file it went to."""
        return self._append((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        self._closed.set()
        self._dirty.set()
        if self._syncer is not None:
            self._syncer.join(timeout=30)
        with self._lock:
            if self._fd is not None:
                self._sync()
                os.close(self._fd)
                self._fd = None
                self._day = None

    def _sync_loop(self) -> None:
        while not self._closed.is_set():
            self._dirty.wait()
            if self._closed.wait(self.sync_every):
                return  # close() syncs what is left
            self._dirty.clear()
            with self._lock:
                self._sync()

    def _sync(self) -> None:
        """fsync the open file (the lock is held); a failure is logged as an error (the lines stay in the
        file; only their durability against a machine crash is in doubt)."""
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as err:
            log.error("cannot fsync %s: %s", self._path, err.strerror or err)

    def _write(self, lines: list[bytes]) -> list[Path]:
        with self._lock:
            try:
                fd, path = self._open()
                view = memoryview(b"".join(lines))
                while view:
                    view = view[os.write(fd, view):]
                if self.sync_every > 0:
                    self._dirty.set()
                else:
                    os.fsync(fd)
            except OSError as err:
                raise ResourceError(f"cannot record exchanges in {self.folder}: {err.strerror or err}") from err
        return [path] * len(lines)

    def _open(self) -> tuple[int, Path]:
        today = datetime.now(UTC).date()
        if self._fd is not None and self._day == today:
            return self._fd, self._path  # type: ignore[return-value]
        if self._fd is not None:
            self._sync()  # yesterday's file, before it is let go
            os.close(self._fd)
            self._fd = None
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"serve-{today:%Y%m%d}.jsonl"
        created = not path.exists()
        # O_APPEND: each batch is one write at the end of the file, whoever else appends to it.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if not created:
            _cut_torn_line(fd, path)
        else:
            fsync_dir(self.folder)  # the new file's name is durable only once its folder is
        self._fd, self._day, self._path = fd, today, path
        log.info("recording checked exchanges in %s", path)
        return fd, path


def _cut_torn_line(fd: int, path: Path) -> None:
    """Cut a last line without its newline (a write cut short by a crash, never answered)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with open(path, "rb") as fh:
        tail_from = max(0, size - 8 * 1024 * 1024)  # a line is at most a prompt's length, escaped
        fh.seek(tail_from)
        tail = fh.read()
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    keep = tail_from + cut + 1 if cut >= 0 else (0 if tail_from == 0 else size)
    if keep == size:
        return
    log.warning("%s: cutting a torn last line of %d bytes (a write cut short by a crash)", path, size - keep)
    os.ftruncate(fd, keep)
    os.fsync(fd)
