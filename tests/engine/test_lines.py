"""`LineBlocks` (JSONL staging's block reader) hands out exactly the lines `Lines` does.

Random files of short, blank, CRLF, bracket-heavy and over-long lines, with and without a BOM and a
final newline, read with a tiny block and line limit so that every path (a line across blocks, a line
longer than the buffer, one over the limit inside a block) is taken many times.
"""

from __future__ import annotations

import io
import random

import pytest

from engine.ingest import lines as lines_module
from engine.ingest.lines import UTF8_BOM, LineBlocks, Lines


def _random_file(rng: random.Random) -> bytes:
    pieces = [UTF8_BOM] if rng.random() < 0.3 else []
    for _ in range(rng.randint(0, 60)):
        kind = rng.random()
        if kind < 0.1:
            line = rng.choice([b"", b"   ", b"\t \r", b"\x0b\x0c"])
        elif kind < 0.2:
            line = bytes(rng.choice(b"ab{[ ") for _ in range(rng.randint(150, 400)))  # over the limit
        else:
            line = bytes(rng.choice(b'ab {}[]":,\r\xc3\xa9') for _ in range(rng.randint(1, 60)))
        pieces.append(line + (b"\r\n" if rng.random() < 0.2 else b"\n"))
    data = b"".join(pieces)
    return data[:-1] if data.endswith(b"\n") and rng.random() < 0.3 else data


def test_line_blocks_equal_lines_on_random_files(monkeypatch):
    monkeypatch.setattr(lines_module, "MAX_LINE_BYTES", 64)
    monkeypatch.setattr(lines_module, "_RAW_KEPT", 16)
    rng = random.Random(5)
    for trial in range(300):
        data = _random_file(rng)
        reader = Lines(io.BytesIO(data))
        want = [(reader.number, line, reader.oversize.get(reader.number)) for line in reader]
        got = []
        blocks = LineBlocks(io.BytesIO(data), rng.choice([8, 50, 100, 300]))
        for block in blocks:
            sizes = block.sizes()
            for i in range(len(block)):
                got.append((block.first + i, block.kept(i), block.oversize.get(i), bool(block.blank[i]),
                            int(block.brackets[i]), int(sizes[i])))
        if data == UTF8_BOM:  # Lines reads one empty line there, LineBlocks none: no row either way
            assert got == [] and [line for _, line, _ in want] == [b""]
            continue
        assert blocks.number == reader.number, trial
        assert len(got) == len(want), trial
        for (number, line, over), (g_number, g_kept, g_over, blank, brackets, size) in zip(want, got, strict=True):
            assert g_number == number, trial
            assert g_over == over, (trial, number)
            assert g_kept == line.removesuffix(b"\n"), (trial, number)
            if over is None:  # an over-long line's blankness and brackets are read from what is kept
                assert blank == (not line.strip()), (trial, number)
                assert brackets == line.count(b"{") + line.count(b"["), (trial, number)
                assert size == len(line), (trial, number)


@pytest.mark.parametrize("tail", [b"", b"\n", b"\nlast"])
def test_a_line_longer_than_the_buffer_is_counted_not_kept(monkeypatch, tail):
    monkeypatch.setattr(lines_module, "MAX_LINE_BYTES", 64)
    monkeypatch.setattr(lines_module, "_RAW_KEPT", 16)
    data = b"first\n" + b"x" * 1000 + tail
    blocks = list(LineBlocks(io.BytesIO(data), 100))
    lines = [(b.first + i, b.kept(i), b.oversize.get(i)) for b in blocks for i in range(len(b))]
    assert lines[0] == (1, b"first", None)
    assert lines[1] == (2, b"x" * 16, 1000 + len(tail[:1]))
    assert lines[2:] == ([(3, b"last", None)] if tail == b"\nlast" else [])
