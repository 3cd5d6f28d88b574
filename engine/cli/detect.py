"""Detection verbs of the `copyhound` CLI: scan, accounts, rings, families, templates, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import (
    add_ray_option,
    count,
    number_between,
    open_engine,
    page_caption,
    page_limit,
    positive_int,
    progress_bar,
    row_limit,
    whole,
)
from engine.cli.output import write_rows
from engine.errors import CopyhoundError
from index import DEFAULT_JOIN


def _signals_text(signals, limit: int = 3) -> str:
    top = sorted(signals, key=lambda s: -s.score)[:limit]
    return "; ".join(f"{s.name}={s.value:.3g} ({s.score:.2f})" for s in top if s.score > 0)


def cmd_scan(args: argparse.Namespace) -> int:
    engine = open_engine(args)
    with progress_bar(args) as progress:
        result = engine.scan(progress=progress, force=args.force, full=args.full, recheck=args.recheck)
    row = result.to_dict()
    row["stage_seconds"] = {k: round(v, 2) for k, v in result.stage_seconds.items()}
    write_rows([row], ("prompts", "embedded", "joined", "edges", "families", "templates", "rings", "flagged_accounts",
                       "resumed", "seconds", "stage_seconds"), args.format, title="scan")
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    engine = open_engine(args)
    accounts = engine.accounts(limit=page_limit(args), min_score=args.min_score)
    rows = []
    for a in accounts:
        row = a.to_dict()
        if args.format == "table":
            row["signals"] = _signals_text(a.signals)
        rows.append(row)
    write_rows(rows, ("account_id", "score", "ring_id", "n_exchanges", "top_signal", "signals"), args.format,
               title="accounts by score",
               caption=page_caption(args, len(rows), lambda: engine.count("accounts", min_score=args.min_score)))
    return 0


def cmd_rings(args: argparse.Namespace) -> int:
    engine = open_engine(args)
    rings = engine.rings(limit=page_limit(args))
    rows = []
    for r in rings:
        row = r.to_dict()
        row["n_accounts"] = len(r.accounts)
        if args.format == "table":
            row["accounts"] = ", ".join(r.accounts[:6]) + (" …" if len(r.accounts) > 6 else "")
            row["signals"] = _signals_text(r.signals)
        rows.append(row)
    write_rows(rows, ("ring_id", "score", "n_accounts", "n_exchanges", "summary", "accounts", "signals"),
               args.format, title="rings", caption=page_caption(args, len(rows), lambda: engine.count("rings")))
    return 0


def cmd_families(args: argparse.Namespace) -> int:
    engine = open_engine(args)
    fams = engine.families(limit=page_limit(args), min_accounts=args.min_accounts)
    write_rows([f.to_dict() for f in fams], ("family_id", "n_accounts", "n_prompts", "n_exchanges", "first_seen",
                                            "last_seen", "center_text"), args.format, title="near-copy families",
               caption=page_caption(args, len(fams),
                                    lambda: engine.count("families", min_accounts=args.min_accounts)))
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    engine = open_engine(args)
    temps = engine.templates(limit=page_limit(args))
    write_rows([t.to_dict() for t in temps], ("template_id", "kind", "n_accounts", "n_prompts", "n_exchanges",
                                             "slot_diversity", "fixed_ratio", "pattern"), args.format,
               title="templates", caption=page_caption(args, len(temps), lambda: engine.count("templates")))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from engine.query.report import write_report

    out = Path(args.out)
    folder = out.parent
    if not folder.is_dir():
        what = f"{folder} is not a folder" if folder.exists() else f"the folder {folder} does not exist"
        raise CopyhoundError(f"{out}: {what}; create it first or choose another --out")
    engine = open_engine(args)
    try:
        path = write_report(engine, out, top=args.top, redact=args.redact)
    except OSError as err:
        raise CopyhoundError(f"{out}: cannot write the report ({err.strerror or err})") from err
    print(path)
    return 0


def _list_bound(text: str) -> int:
    value = whole(text)
    if value != 0 and value < 16:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or at least 16, not {value}")
    return value


def add_commands(sub, common, fmt, device) -> None:
    p = sub.add_parser("scan", parents=[common, fmt, device], help="embed what is new, then detect campaigns",
                       description="Embed new prompts, self-join them into near-copy edges (resumable): all "
                       "prompts on the first scan, then only the prompts that are new, against all; then "
                       "recompute families, templates, account links, rings and scores. Does nothing "
                       "when nothing new arrived since the last scan.")
    p.add_argument("--force", action="store_true", help="join every prompt and recompute even if nothing new arrived")
    p.add_argument("--full", action="store_true",
                   help="join every prompt again instead of only the new ones against all, also when nothing new "
                   "arrived since an incremental scan (the two can differ in which near-copies a prompt "
                   "with more than 200 of them keeps)")
    p.add_argument("--recheck", action="store_true",
                   help="with --encoder static (or onnx): confirm each candidate near-copy edge with all-MiniLM-L6-v2 "
                   "(which embeds only the prompts that have one); slower, fewer false edges")
    p.add_argument("--nprobe", type=positive_int, default=DEFAULT_JOIN.nprobe, metavar="N",
                   help="past 200k prompts, IVF lists each list is joined with (default %(default)s); more "
                   "finds more of the near-copies close to the threshold, and the join takes longer")
    p.add_argument("--spill", type=number_between(0.0, 2.0), default=DEFAULT_JOIN.spill, metavar="M",
                   help="past 200k prompts, a prompt within M (inner product) of its second-nearest IVF list "
                   "is also joined there (default %(default)s, 0 = off); finds the near-copies on list "
                   "boundaries, the ones --nprobe misses")
    p.add_argument("--max-list", type=_list_bound, default=DEFAULT_JOIN.max_list, metavar="N",
                   help="past 200k prompts, IVF lists of more than N prompts are split for the join (default "
                   "%(default)s = off); keeps the join's cost per prompt fixed as prompts grow, but finds "
                   "fewer near-copies than the unsplit lists")
    p.add_argument("--point-probes", type=count, default=DEFAULT_JOIN.point_probes, metavar="P",
                   help="past 200k prompts, each prompt is also joined with its own P nearest IVF lists (default "
                   "%(default)s, 0 = off); finds the near-copies of prompts at the edge of their list, which a "
                   "list's --nprobe misses more often the more prompts there are; each one lengthens the "
                   "join")
    add_ray_option(p)
    p.set_defaults(func=cmd_scan)

    limit = argparse.ArgumentParser(add_help=False)
    limit.add_argument("--limit", "-n", type=row_limit, default=None,
                       help="rows to write (0 = all); by default a table shows the first 50 and says how many "
                       "there are, and csv, json, jsonl and parquet get every row")

    p = sub.add_parser("accounts", parents=[common, fmt, limit], help="accounts by campaign score, with signals")
    p.add_argument("--min-score", type=float, default=0.0, help="only accounts scoring at least this (default 0)")
    p.set_defaults(func=cmd_accounts)
    p = sub.add_parser("rings", parents=[common, fmt, limit], help="rings of linked accounts, with evidence")
    p.set_defaults(func=cmd_rings)
    p = sub.add_parser("families", parents=[common, fmt, limit], help="near-copy families sent by several accounts")
    p.add_argument("--min-accounts", type=positive_int, default=2,
                   help="only families sent by at least this many accounts (default 2)")
    p.set_defaults(func=cmd_families)
    p = sub.add_parser("templates", parents=[common, fmt, limit], help="mined prompt templates")
    p.set_defaults(func=cmd_templates)
    p = sub.add_parser("report", parents=[common], help="write a Markdown or HTML report of the top rings",
                       description="Write a case report of the top rings and their evidence (.md or .html).")
    p.add_argument("--out", "-o", default="copyhound-report.md", help="output file (.md or .html)")
    p.add_argument("--top", type=positive_int, default=10, help="rings to include (default 10)")
    p.add_argument("--redact", action="store_true",
                   help="for sending out: prompts in the evidence as fingerprints and short excerpts, no "
                   "workspace path")
    p.set_defaults(func=cmd_report)

