"""A case report of the top rings and their evidence, in Markdown or HTML, for an analyst to attach.

The report is built once as blocks (headings, paragraphs, lists, tables) of inline pieces, each either
our own wording (`_Raw`), a quoted value shown as text (`_Text`) or as code (`_Code`); the Markdown and
HTML writers each escape the quoted values their own way. A quoted value (account id, summary, example,
prompt excerpt) is data from the traffic and may hold anything: a newline, `#`, `|`, backticks, `<`,
`[`, a bidi override. Escaped, it renders as that text on one line in both formats and never starts a
heading, a table cell, a list, a link or markup of its own.

With `redact`, examples show prompts as fingerprints and excerpts and the workspace path is left out
(`engine.query.redact`); the heading says the report is redacted.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import CopyhoundError
from engine.files import atomic_write
from engine.models import Signal
from engine.query.redact import DESCRIPTION as REDACTION
from engine.query.redact import Redactor, scrub_addresses


@dataclass(frozen=True)
class _Raw:
    """Our own wording: plain text with nothing either format would read as markup."""

    text: str


@dataclass(frozen=True)
class _Text:
    """A quoted value, shown as text."""

    text: str


@dataclass(frozen=True)
class _Code:
    """A quoted value, shown as code (ids)."""

    text: str


Inline = list[_Raw | _Text | _Code]


@dataclass(frozen=True)
class _Block:
    kind: str  # "h1".."h3", "p", "ul" (items), "table" (rows; the first is the header)
    items: tuple = ()  # an Inline for "h*"/"p"; Inlines for "ul"; rows of Inlines for "table"


# ---------------------------------------------------------------------- content
def _example_lines(signal: Signal, redactor: Redactor | None, limit: int = 3) -> list[Inline]:
    lines: list[Inline] = []
    examples = list(signal.examples[:limit])
    # Values are cut at 160 characters to keep quoted prompts short; redacted, they hold no prompt text but
    # excerpts of 40 and fingerprints, and the cut would only drop fingerprints (of nested link evidence).
    cut = 160
    if redactor is not None:
        examples = redactor.redact(examples)
        cut = 10_000
    for example in examples:
        if isinstance(example, dict):
            line: Inline = []
            for key, value in example.items():
                text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
                text = " ".join(text.split())
                if line:
                    line.append(_Raw("; "))
                line += [_Text(str(key)), _Raw(": "), _Text(f"{text[:cut]}{'…' if len(text) > cut else ''}")]
            lines.append(line)
        else:
            lines.append([_Text(str(example)[:200])])
    return lines


def _blocks(engine, top: int, redact: bool) -> list[_Block]:
    status = engine.status()
    rings = engine.rings(limit=top)
    accounts = engine.accounts(limit=25, min_score=0.0)
    redactor = None
    if redact:
        redactor = Redactor(engine.store).prepare(list(s.examples) for r in rings for s in r.signals)
    # Infrastructure signals quote shared addresses in their detail: scrubbed when redacted.
    prose = scrub_addresses if redact else str
    where: Inline = [_Raw("Workspace ("), _Raw("path left out"), _Raw(")")] if redact else \
        [_Raw("Workspace "), _Code(str(status.workspace))]
    out = [_Block("h1", ([_Raw("copyhound case report")],))]
    if redact:
        out.append(_Block("p", ([_Raw("Redacted: "), _Text(REDACTION + ".")],)))
    out += [
        _Block("p", (where + [_Raw(
            f": {status.exchanges:,} exchanges from {status.accounts:,} accounts, "
            f"{status.prompts:,} distinct prompts; traffic {status.first_seen} to {status.last_seen}; "
            f"last scan {status.last_scan}. Generated {datetime.now(UTC).isoformat(timespec='seconds')}.")],)),
        _Block("h2", ([_Raw(f"Top {len(rings)} rings")],)),
    ]
    if not rings:
        out.append(_Block("p", ([_Raw("No ring passed the significance cut-off.")],)))
    for ring in rings:
        members: Inline = [_Raw("Members: ")]
        for i, a in enumerate(ring.accounts[:50]):
            members += ([_Raw(", ")] if i else []) + [_Code(a)]
        if len(ring.accounts) > 50:
            members.append(_Raw(f" and {len(ring.accounts) - 50} more"))
        out += [
            _Block("h3", ([_Raw(f"Ring {ring.ring_id}: score {ring.score:.2f}, {len(ring.accounts)} accounts, "
                                f"{ring.n_exchanges:,} exchanges")],)),
            _Block("p", ([_Text(prose(ring.summary or ""))],)),
            _Block("p", (members,)),
        ]
        rows = [[[_Raw(h)] for h in ("signal", "value", "background cut-off", "score", "detail")]]
        for s in sorted(ring.signals, key=lambda s: -s.score):
            rows.append([[_Text(s.name)], [_Raw(f"{s.value:.4g}")], [_Raw(f"{s.background:.4g}")],
                         [_Raw(f"{s.score:.2f}")], [_Text(prose(s.detail))]])
        out.append(_Block("table", tuple(rows)))
        for s in ring.signals:
            examples = _example_lines(s, redactor)
            if examples:
                out += [_Block("p", ([_Raw("Evidence for "), _Text(s.name), _Raw(":")],)),
                        _Block("ul", tuple(examples))]
    out.append(_Block("h2", ([_Raw("Top accounts")],)))
    rows = [[[_Raw(h)] for h in ("account", "score", "ring", "exchanges", "strongest signal")]]
    for a in accounts:
        rows.append([[_Code(a.account_id)], [_Raw(f"{a.score:.2f}")],
                     [_Raw(str(a.ring_id) if a.ring_id is not None else "")], [_Raw(str(a.n_exchanges))],
                     [_Text(a.top_signal or "")]])
    out.append(_Block("table", tuple(rows)))
    return out


# ---------------------------------------------------------------------- escaping
# Controls, line/paragraph separators and bidi overrides: shown as \n, \x1b, \u202e so a value stays on its
# line and reads in its own order.
_UNSEEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(text: str) -> str:
    def name(m: re.Match) -> str:
        c = m.group()
        return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return _UNSEEN.sub(name, text)


# Inline markup CommonMark/GFM reads anywhere in a line: escapes, code, emphasis, links and images,
# raw HTML and autolinks, entities, table cells, strikethrough.
_MD_INLINE = re.compile(r"[\\`*\[\]<>&|~!]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# Markup read only at the start of a line: headings, lists, quotes, thematic breaks, setext underlines.
_MD_LEAD = re.compile(r"^([#>+=-]|\d+[.)])")


def _md_text(text: str, *, lead: bool) -> str:
    out = _MD_INLINE.sub(lambda m: "\\" + m.group(), _visible(text))
    if lead:
        # Leading spaces would make an indented code block; the first mark, a heading or a list.
        out = _MD_LEAD.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], out.lstrip())
    return out


def _md_code(text: str, *, in_table: bool) -> str:
    body = _visible(text)
    if in_table:
        # GFM splits a row on every unescaped `|`, code spans included, and drops the backslash after.
        body = body.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", body)), default=0) + 1)
    # A space pads a span that starts or ends with a backtick or a space (CommonMark strips one each side).
    if body and (body[0] in "` " or body[-1] in "` ") and body.strip(" "):
        body = f" {body} "
    return f"{fence}{body}{fence}"


def _markdown_inline(pieces: Inline, *, in_table: bool = False) -> str:
    out = []
    for piece in pieces:
        if isinstance(piece, _Raw):
            out.append(piece.text)
        elif isinstance(piece, _Code):
            out.append(_md_code(piece.text, in_table=in_table))
        else:
            out.append(_md_text(piece.text, lead=not out and not in_table))
    return "".join(out)


def _html_inline(pieces: Inline) -> str:
    out = []
    for piece in pieces:
        # quote=True: a value is safe in an attribute too, should one ever be quoted in one.
        text = html.escape(_visible(piece.text), quote=True)
        out.append(f"<code>{text}</code>" if isinstance(piece, _Code) else text)
    return "".join(out)


# ---------------------------------------------------------------------- writers
def markdown_from(blocks: list[_Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if block.kind.startswith("h"):
            out += ["#" * int(block.kind[1]) + " " + _markdown_inline(block.items[0]), ""]
        elif block.kind == "p":
            out += [_markdown_inline(block.items[0]), ""]
        elif block.kind == "ul":
            out += [f"- {_markdown_inline(item)}" for item in block.items] + [""]
        elif block.kind == "table":
            head, *rows = block.items
            out.append("| " + " | ".join(_markdown_inline(c, in_table=True) for c in head) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(_markdown_inline(c, in_table=True) for c in row) + " |" for row in rows]
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def html_from(blocks: list[_Block]) -> str:
    """A self-contained HTML page of the report."""
    body: list[str] = []
    for block in blocks:
        if block.kind.startswith("h"):
            body.append(f"<{block.kind}>{_html_inline(block.items[0])}</{block.kind}>")
        elif block.kind == "p":
            if any(piece.text for piece in block.items[0]):
                body.append(f"<p>{_html_inline(block.items[0])}</p>")
        elif block.kind == "ul":
            body += ["<ul>"] + [f"<li>{_html_inline(item)}</li>" for item in block.items] + ["</ul>"]
        elif block.kind == "table":
            head, *rows = block.items
            body.append("<table>")
            body.append("<tr>" + "".join(f"<th>{_html_inline(c)}</th>" for c in head) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>" for row in rows]
            body.append("</table>")
    style = ("body{font-family:sans-serif;max-width:72rem;margin:2rem auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}code{background:#eee}")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>copyhound case report</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def render_markdown(engine, top: int = 10, *, redact: bool = False) -> str:
    """The report as Markdown (CommonMark with GFM tables)."""
    return markdown_from(_blocks(engine, top, redact))


def render_html(engine, top: int = 10, *, redact: bool = False) -> str:
    """The report as one self-contained HTML page."""
    return html_from(_blocks(engine, top, redact))


def write_report(engine, path: Path, top: int = 10, *, redact: bool = False) -> Path:
    """Write the report to `path` (.md/.markdown or .html/.htm, atomically). With `redact`, prompts are
    fingerprints and excerpts and the workspace path is left out (see `engine.query.redact`)."""
    suffix = path.suffix.lower()
    if suffix not in (".md", ".markdown", ".html", ".htm"):
        raise CopyhoundError(f"{path}: report must end in .md or .html")
    render = render_html if suffix in (".html", ".htm") else render_markdown
    text = render(engine, top=top, redact=redact)
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return path
