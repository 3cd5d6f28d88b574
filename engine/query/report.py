"""A case report of the top rings and their evidence, in Markdown or HTML, for an analyst to attach."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import CopyhoundError
from engine.files import atomic_write
from engine.models import Signal


def _example_lines(signal: Signal, limit: int = 3) -> list[str]:
    lines = []
    for example in signal.examples[:limit]:
        if isinstance(example, dict):
            parts = []
            for key, value in example.items():
                text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
                text = " ".join(text.split())
                parts.append(f"{key}: {text[:160]}{'…' if len(text) > 160 else ''}")
            lines.append("; ".join(parts))
        else:
            lines.append(str(example)[:200])
    return lines


def render_markdown(engine, top: int = 10) -> str:
    status = engine.status()
    rings = engine.rings(limit=top)
    accounts = engine.accounts(limit=25, min_score=0.0)
    out = [
        "# copyhound case report",
        "",
        f"Workspace `{status.workspace}`: {status.exchanges:,} exchanges from {status.accounts:,} accounts, "
        f"{status.prompts:,} distinct prompts; traffic {status.first_seen} to {status.last_seen}; "
        f"last scan {status.last_scan}. Generated {datetime.now(UTC).isoformat(timespec='seconds')}.",
        "",
        f"## Top {len(rings)} rings",
        "",
    ]
    if not rings:
        out.append("No ring passed the significance cut-off.")
    for ring in rings:
        out += [
            f"### Ring {ring.ring_id}: score {ring.score:.2f}, {len(ring.accounts)} accounts, "
            f"{ring.n_exchanges:,} exchanges",
            "",
            ring.summary or "",
            "",
            "Members: " + ", ".join(f"`{a}`" for a in ring.accounts[:50])
            + (f" and {len(ring.accounts) - 50} more" if len(ring.accounts) > 50 else ""),
            "",
            "| signal | value | background cut-off | score | detail |",
            "|---|---|---|---|---|",
        ]
        for s in sorted(ring.signals, key=lambda s: -s.score):
            out.append(f"| {s.name} | {s.value:.4g} | {s.background:.4g} | {s.score:.2f} | {s.detail} |")
        for s in ring.signals:
            examples = _example_lines(s)
            if examples:
                out += ["", f"Evidence for {s.name}:", ""] + [f"- {line}" for line in examples]
        out.append("")
    out += ["## Top accounts", "", "| account | score | ring | exchanges | strongest signal |", "|---|---|---|---|---|"]
    for a in accounts:
        out.append(f"| `{a.account_id}` | {a.score:.2f} | {a.ring_id if a.ring_id is not None else ''} | "
                   f"{a.n_exchanges} | {a.top_signal} |")
    return "\n".join(out) + "\n"


def render_html(markdown: str) -> str:
    """A self-contained HTML page of the Markdown report (headings, tables, lists, paragraphs)."""
    body: list[str] = []
    in_table = in_list = False
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is not None:
            if set(line.replace("|", "").strip()) <= {"-"}:
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
                body.append("<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in cells) + "</tr>")
                continue
            body.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if in_list:
            body.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    if in_table:
        body.append("</table>")
    if in_list:
        body.append("</ul>")
    style = ("body{font-family:sans-serif;max-width:72rem;margin:2rem auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}code{background:#eee}")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>copyhound case report</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _inline(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def write_report(engine, path: Path, top: int = 10) -> Path:
    suffix = path.suffix.lower()
    if suffix not in (".md", ".markdown", ".html", ".htm"):
        raise CopyhoundError(f"{path}: report must end in .md or .html")
    markdown = render_markdown(engine, top=top)
    text = render_html(markdown) if suffix in (".html", ".htm") else markdown
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return path
