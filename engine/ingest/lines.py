"""Reading exchange files' lines with their physical line numbers, under a line-size limit.

A JSONL line or CSV record over MAX_LINE_BYTES is never held whole: only its first `_RAW_KEPT` bytes are
kept for the quarantine. The encoding check refuses UTF-16/32 files in one line before any row is read.
`Lines` gives one line at a time (CSV, whose records span lines); `LineBlocks` gives JSONL's lines in
blocks of megabytes with per-line sizes computed over the block's bytes, so that staging a million rows
is not a million rounds of Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.config import MAX_LINE_BYTES
from engine.errors import IngestError

# Characters of an over-long line kept in the quarantine (the whole line is never read into memory).
_RAW_KEPT = 1000
UTF8_BOM = b"\xef\xbb\xbf"


def deeper_than(value: object, limit: int) -> bool:
    """Whether a parsed JSON value nests objects and arrays more than `limit` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def check_encoding(path: Path, head: bytes) -> None:
    """Refuse a file that is not UTF-8 text as a whole (UTF-16/32 by its BOM or its NUL bytes)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head.startswith(b"\x00\x00\xfe\xff"):
        kind = "UTF-32" if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")) else "UTF-16"
        raise IngestError(f"{path}: the file is {kind} text, not UTF-8; convert it first "
                          f"(iconv -f {kind} -t UTF-8)")
    sample = head[:4096]
    if sample and sample.count(0) * 4 >= len(sample):
        raise IngestError(f"{path}: the file is not UTF-8 text ({sample.count(0)} NUL bytes in its first "
                          f"{len(sample)}: UTF-16 without a BOM, or binary); convert it to UTF-8 first")


class CsvRecord:
    """What the CSV line feed learns about the record being read: its lines, size, and bad UTF-8."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lines: list[bytes] = []
        self.size = 0
        self.bad_utf8 = False


class Lines:
    """The physical lines of a (possibly gzipped) file, as bytes, in bounded memory.

    A line longer than MAX_LINE_BYTES is never held whole: `oversize[line]` records its size, its first
    bytes stand in for it, and `keep` (when given) maps each further piece to what must survive of it (the
    CSV reader keeps quotes, delimiters and newlines so that the records after it parse as they should).
    A UTF-8 BOM at the start of the file is dropped. `number` is the last line's number (1-based).
    """

    def __init__(self, fh, keep=None) -> None:
        self.fh = fh
        self.keep = keep
        self.number = 0
        self.bytes_read = 0
        self.oversize: dict[int, int] = {}

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.fh.readline(MAX_LINE_BYTES + 1)
        if not data:
            raise StopIteration
        self.number += 1
        self.bytes_read += len(data)
        # Whole when it ended within the limit (decided before a BOM is dropped from it, or a first line
        # over the limit would be cut in two lines).
        whole = len(data) <= MAX_LINE_BYTES or data.endswith(b"\n")
        if self.number == 1 and data.startswith(UTF8_BOM):
            data = data[len(UTF8_BOM):]
        if whole:
            return data
        size, kept = len(data), [data[:_RAW_KEPT]]
        if self.keep:
            kept.append(self.keep(data[_RAW_KEPT:]))
        while not data.endswith(b"\n"):
            data = self.fh.readline(1 << 20)
            if not data:
                break
            size += len(data)
            self.bytes_read += len(data)
            if self.keep:
                kept.append(self.keep(data))
        self.oversize[self.number] = size
        return b"".join(kept) + (b"" if kept[-1].endswith(b"\n") else b"\n")


# Bytes that bytes.strip() removes: a line made of them only is blank.
_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True
_BRACKETS = np.zeros(256, bool)
_BRACKETS[list(b"{[")] = True


@dataclass(frozen=True)
class LineBlock:
    """Consecutive physical lines of a file, as `LineBlocks` reads them.

    `data` holds the lines' bytes, each followed by its newline (the file's last line may have none);
    line i is `data[starts[i]:ends[i]]` (newline excluded) and has number `first + i`. A line over
    MAX_LINE_BYTES is in `oversize` (index -> its size in bytes, newline included, as `Lines` counts it)
    and `data` holds at most its first `_RAW_KEPT` bytes then. `blank[i]`: nothing but ASCII whitespace
    (not a row); `brackets[i]`: how many `{` and `[` it holds, a bound on its JSON nesting.
    """

    first: int
    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    blank: np.ndarray
    brackets: np.ndarray
    oversize: dict[int, int]

    def __len__(self) -> int:
        return len(self.starts)

    def kept(self, i: int) -> bytes:
        """Line i's bytes, only the first `_RAW_KEPT` of an over-long one (as `Lines` keeps it)."""
        end = min(int(self.ends[i]), int(self.starts[i]) + _RAW_KEPT) if i in self.oversize else int(self.ends[i])
        return self.data[int(self.starts[i]):end]

    def sizes(self) -> np.ndarray:
        """Each line's size with its newline, as `Lines` hands it out (the last line may have none)."""
        sizes = self.ends - self.starts + 1
        if len(sizes) and not self.data.endswith(b"\n"):
            sizes[-1] -= 1
        return sizes


class LineBlocks:
    """The physical lines of a (possibly gzipped) JSONL file in blocks of about `block_bytes`.

    The same lines, numbers, blank lines and over-long lines as `Lines`, in bounded memory: a block ends
    at its last newline, and a line longer than the buffer is read on to its newline without being kept
    (its first `_RAW_KEPT` bytes stand in for it). `number` is the last line handed out, `bytes_read`
    what has been read of the (uncompressed) file.
    """

    def __init__(self, fh, block_bytes: int) -> None:
        self.fh = fh
        self.block_bytes = block_bytes
        self.number = 0
        self.bytes_read = 0
        self._carry = b""
        self._eof = False
        self._started = False

    def __iter__(self) -> Iterator[LineBlock]:
        return self

    def __next__(self) -> LineBlock:
        buf = self._carry
        # Read to a full block that holds a newline; a buffer past MAX_LINE_BYTES without one is the
        # start of an over-long line.
        while not self._eof and not (len(buf) >= self.block_bytes
                                     and (len(buf) > MAX_LINE_BYTES or buf.rfind(b"\n") >= 0)):
            more = self.fh.read(max(self.block_bytes - len(buf), 1 << 20))
            self.bytes_read += len(more)
            self._eof = not more
            buf += more
        if not self._started:
            self._started = True
            if buf.startswith(UTF8_BOM):
                buf = buf[len(UTF8_BOM):]
        if not buf:
            self._carry = b""
            raise StopIteration
        cut = len(buf) if self._eof else buf.rfind(b"\n") + 1
        if cut == 0:
            return self._skip_long_line(buf)
        self._carry = buf[cut:]
        return self._block(buf[:cut] if cut < len(buf) else buf, {})

    def _skip_long_line(self, buf: bytes) -> LineBlock:
        """A line longer than the buffer: read on to its newline, keeping only its first bytes."""
        size, head = len(buf), buf[:_RAW_KEPT]
        rest = b""
        while True:
            piece = self.fh.read(1 << 20)
            self.bytes_read += len(piece)
            if not piece:
                self._eof = True
                break
            end = piece.find(b"\n")
            if end >= 0:
                size += end + 1
                rest = piece[end + 1:]
                break
            size += len(piece)
        self._carry = rest
        data = head + (b"\n" if rest or not self._eof else b"")
        return self._block(data, {0: size})

    def _block(self, data: bytes, oversize: dict[int, int]) -> LineBlock:
        arr = np.frombuffer(data, np.uint8)
        newlines = np.flatnonzero(arr == 10)
        ends = newlines if data.endswith(b"\n") else np.append(newlines, len(data))
        starts = np.concatenate(([0], newlines + 1))[:len(ends)]
        # Blank: only a line that is empty or starts with whitespace can be; those few are read one by one.
        first = arr[np.minimum(starts, max(len(arr) - 1, 0))] if len(arr) else np.zeros(0, np.uint8)
        maybe = np.flatnonzero((ends == starts) | _WHITESPACE[first])
        blank = np.zeros(len(starts), bool)
        blank[maybe] = [not data[s:e].strip() for s, e in zip(starts[maybe].tolist(), ends[maybe].tolist(), strict=True)]
        bracket_at = np.flatnonzero((arr == 123) | (arr == 91))
        brackets = np.bincount(np.searchsorted(starts, bracket_at, "right") - 1, minlength=len(starts))
        block = LineBlock(self.number + 1, data, starts.astype(np.int64), ends.astype(np.int64), blank,
                          brackets, oversize)
        if not oversize:
            sizes = block.sizes()
            for i in np.flatnonzero(ends - starts > MAX_LINE_BYTES).tolist():
                oversize[i] = int(sizes[i])
        self.number += len(block)
        return block
