"""The case report (engine.query.report): hostile ids and values render as text on one line in Markdown and
HTML, and `redact` leaves prompts, responses, IPs and the workspace path out."""

from __future__ import annotations

import shutil
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.models import AccountScore, Ring, Signal, WorkspaceStatus
from engine.query.redact import fingerprint_hex
from engine.query.report import render_html, render_markdown, write_report
from tests.fixtures.evidence import ORGANIC, RING, build_evidence_workspace, evidence_engine

markdown_it = pytest.importorskip("markdown_it")


class _Shape(HTMLParser):
    """What a reader sees: headings, table rows (cell texts), code spans, list items; and every tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self.rows: list[list[str]] = []
        self.codes: list[str] = []
        self.items: list[str] = []
        self._open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("h1", "h2", "h3", "td", "th", "code", "li"):
            self._open.append((tag, []))

    def handle_data(self, data):
        for _, buf in self._open:
            buf.append(data)

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            _, buf = self._open.pop()
            text = "".join(buf)
            if tag in ("td", "th"):
                self.rows[-1].append(text.strip())
            elif tag == "code":
                self.codes.append(text)
            elif tag == "li":
                self.items.append(text)
            else:
                self.headings.append((tag, text))


def _shape(page: str) -> _Shape:
    parser = _Shape()
    parser.feed(page)
    return parser


def _both(engine, **kw) -> tuple[_Shape, _Shape, str, str]:
    """The Markdown report as a CommonMark+GFM-tables renderer shows it, and the HTML report."""
    md = render_markdown(engine, **kw)
    page = render_html(engine, **kw)
    return _shape(markdown_it.MarkdownIt("commonmark").enable("table").render(md)), _shape(page), md, page


@pytest.fixture(scope="module")
def master(tmp_path_factory) -> Path:
    return build_evidence_workspace(tmp_path_factory.mktemp("report") / "ws")


@pytest.fixture
def engine(master, tmp_path):
    shutil.copytree(master, tmp_path / "ws")
    return evidence_engine(tmp_path / "ws")


def _check_layout(shape: _Shape, ids: list[str], members: list[str]) -> None:
    assert [h for h, _ in shape.headings] == ["h1", "h2", "h3", "h2"]
    assert "script" not in shape.tags and "a" not in shape.tags and "em" not in shape.tags
    accounts = [row for row in shape.rows if len(row) == 5 and row[0] != "signal"][-len(ids):]
    assert [row[0] for row in accounts] == ids
    assert all(m in shape.codes for m in members)


@pytest.mark.parametrize("redact", [False, True])
def test_hostile_account_ids_render_as_text_in_a_real_workspace(engine, redact):
    """Ids holding `#`, `|`, backticks, `<script>`, a link, emphasis, a list marker, an entity and quotes,
    ingested for real: each shows as itself, in its cell, and adds no heading, cell, link or tag."""
    md_shape, html_shape, md, _ = _both(engine, redact=redact)
    ids = list(RING) + list(ORGANIC)
    for shape in (md_shape, html_shape):
        _check_layout(shape, ids, list(RING))
    assert sum(line.startswith("#") for line in md.splitlines()) == 4


def _stub(ids: list[str], name: str, detail: str, example: dict, summary: str, path: str) -> SimpleNamespace:
    """An engine-like object answering the three calls the report makes with these values."""
    signal = Signal(name, 1.0, 0.5, 0.9, detail, (example,))
    ring = Ring(1, 0.9, tuple(ids), 10, summary, (signal,))
    scores = [AccountScore(a, 0.9, 1, 2, name, ()) for a in ids]
    status = WorkspaceStatus(path, 10, len(ids), 5, 0, 0, "enc", None, 1, datetime(2026, 1, 1),
                             datetime(2026, 1, 2), None)
    return SimpleNamespace(status=lambda: status, rings=lambda limit: [ring], accounts=lambda limit, min_score: scores)


def test_control_characters_in_values_stay_on_one_line():
    """The writer itself, fed ids and texts no ingest would let through (newlines, NUL, bidi override, line
    separator): each is shown escaped, on its line, in both formats."""
    hostile = {"a\nb": "a\\nb", "# x\r\n## y": "# x\\r\\n## y", "nul\x00": "nul\\x00",
               "rtl\u202etxt": "rtl\\u202etxt", "sep\u2028| z": "sep\\u2028| z", "tab\there`": "tab\\there`"}
    ids = list(hostile)
    stub = _stub(ids, "shared|families\n# boom", "detail | with\npipe",
                 {"text\n- key": "line one\n# line two | <b>bold</b>", "n": 3}, "\n# summary heading\n- list",
                 "/tmp/ws\n# path")
    md_shape, html_shape, md, page = _both(stub)
    visible = list(hostile.values())
    for shape in (md_shape, html_shape):
        _check_layout(shape, visible, visible)
        assert "/tmp/ws\\n# path" in shape.codes
        (item,) = shape.items
        # An example's value has its whitespace folded (as before); its key keeps the newline, escaped.
        assert item == "text\\n- key: line one # line two | <b>bold</b>; n: 3"
        signal_rows = [row for row in shape.rows if row and row[0].startswith("shared|")]
        assert signal_rows == [["shared|families\\n# boom", "1", "0.5", "0.90", "detail | with\\npipe"]]
    assert "b" not in html_shape.tags
    assert "\u202e" not in md + page and "\x00" not in md + page and "\u2028" not in md + page
    # The same report of harmless values has exactly as many lines: no value added one.
    plain = _stub([f"id{i}" for i in range(len(ids))], "shared", "detail", {"text": "line", "n": 3}, "summary", "/ws")
    assert len(md.splitlines()) == len(render_markdown(plain).splitlines())
    assert len(page.splitlines()) == len(render_html(plain).splitlines())


def test_redacted_report_quotes_fingerprints_not_prompts(engine, tmp_path):
    with engine.store.connect() as con:
        prompts = con.execute("SELECT text, fingerprint FROM prompts").fetchall()
        by_id = dict(con.execute("SELECT prompt_id, fingerprint FROM prompts").fetchall())
        secrets = [s for row in con.execute("SELECT response, ip FROM exchanges").fetchall() for s in row]
    # The ring's evidence quotes prompts beside their ids (link evidence: prompt_a/text_a, prompt_b/text_b).
    ring = engine.rings(limit=1)[0]
    entries = [e for s in ring.signals for ex in s.examples for key in ("families", "templates")
               for e in ex.get(key, [])]
    quoted = {fingerprint_hex(by_id[e[k]]) for e in entries for k in ("prompt_a", "prompt_b")}
    assert len(quoted) == 4
    for suffix in (".md", ".html"):
        text = write_report(engine, tmp_path / f"r{suffix}", redact=True).read_text(encoding="utf-8")
        assert "Redacted:" in text and str(engine.workspace) not in text
        assert all(p not in text and p[:60] not in text for p, _ in prompts)
        assert all(s not in text for s in secrets)
        assert all(h in text for h in quoted)
        plain = write_report(engine, tmp_path / f"p{suffix}").read_text(encoding="utf-8")
        assert "Redacted" not in plain and str(engine.workspace) in plain
        assert not any(h in plain for h in quoted)
        assert any(p[:60] in plain for p, _ in prompts)
