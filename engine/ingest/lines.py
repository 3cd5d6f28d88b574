"""Reading exchange files line by line with their physical line numbers, under a line-size limit.

A JSONL line or CSV record over MAX_LINE_BYTES is never held whole: only its first `_RAW_KEPT` bytes are
kept for the quarantine. The encoding check refuses UTF-16/32 files in one line before any row is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
        if self.number == 1 and data.startswith(UTF8_BOM):
            data = data[len(UTF8_BOM):]
        if len(data) <= MAX_LINE_BYTES or data.endswith(b"\n"):
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
