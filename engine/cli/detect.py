"""Detection verbs of the `copyhound` CLI: scan, accounts, rings, families, templates, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import add_ray_option, open_engine, progress_bar
from engine.cli.output import write_rows
from index import DEFAULT_JOIN


def _signals_text(signals, limit: int = 3) -> str:
    top = sorted(signals, key=lambda s: -s.score)[:limit]
    return "; ".join(f"{s.name}={s.value:.3g} ({s.score:.2f})" for s in top if s.score > 0)


def cmd_scan(args: argparse.Namespace) -> int:
    engine = open_engine(args)
    with progress_bar(args) as progress:
        result = engine.scan(progress=progress, force=args.force, recheck=args.recheck)
    row = result.to_dict()
    row["stage_seconds"] = {k: round(v, 2) for k, v in result.stage_seconds.items()}
    write_rows([row], ("prompts", "embedded", "edges", "families", "templates", "rings", "flagged_accounts",
                       "resumed", "seconds", "stage_seconds"), args.format, title="scan")
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    accounts = open_engine(args).accounts(limit=args.limit or None, min_score=args.min_score)
    rows = []
    for a in accounts:
        row = a.to_dict()
        if args.format == "table":
            row["signals"] = _signals_text(a.signals)
        rows.append(row)
    write_rows(rows, ("account_id", "score", "ring_id", "n_exchanges", "top_signal", "signals"), args.format,
               title="accounts by score")
    return 0


def cmd_rings(args: argparse.Namespace) -> int:
    rings = open_engine(args).rings(limit=args.limit or None)
    rows = []
    for r in rings:
        row = r.to_dict()
        row["n_accounts"] = len(r.accounts)
        if args.format == "table":
            row["accounts"] = ", ".join(r.accounts[:6]) + (" …" if len(r.accounts) > 6 else "")
            row["signals"] = _signals_text(r.signals)
        rows.append(row)
    write_rows(rows, ("ring_id", "score", "n_accounts", "n_exchanges", "summary", "accounts", "signals"),
               args.format, title="rings")
    return 0


def cmd_families(args: argparse.Namespace) -> int:
    fams = open_engine(args).families(limit=args.limit or None, min_accounts=args.min_accounts)
    write_rows([f.to_dict() for f in fams], ("family_id", "n_accounts", "n_prompts", "n_exchanges", "first_seen",
                                            "last_seen", "center_text"), args.format, title="near-copy families")
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    temps = open_engine(args).templates(limit=args.limit or None)
    write_rows([t.to_dict() for t in temps], ("template_id", "kind", "n_accounts", "n_prompts", "n_exchanges",
                                             "slot_diversity", "fixed_ratio", "pattern"), args.format,
               title="templates")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from engine.query.report import write_report

    path = write_report(open_engine(args), Path(args.out), top=args.top, redact=args.redact)
    print(path)
    return 0


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _list_bound(text: str) -> int:
    value = _whole(text)
    if value != 0 and value < 16:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or at least 16, not {value}")
    return value


def _count(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or more, not {value}")
    return value


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 2.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2, not {value}")
    return value


def add_commands(sub, common, fmt, device) -> None:
    p = sub.add_parser("scan", parents=[common, fmt, device], help="embed what is new, then detect campaigns",
                       description="Embed new prompts, self-join all prompts into near-copy edges (resumable), "
                       "then recompute families, templates, account links, rings and scores. Does nothing "
                       "when nothing new arrived since the last scan.")
    p.add_argument("--force", action="store_true", help="recompute even if nothing new arrived")
    p.add_argument("--recheck", action="store_true",
                   help="with --encoder static (or onnx): confirm each candidate near-copy edge with all-MiniLM-L6-v2 "
                   "(which embeds only the prompts that have one); slower, fewer false edges")
    p.add_argument("--nprobe", type=_positive_int, default=DEFAULT_JOIN.nprobe, metavar="N",
                   help="past 200k prompts, IVF lists each list is joined with (default %(default)s); more "
                   "finds more of the near-copies close to the threshold, and the join takes longer")
    p.add_argument("--spill", type=_margin, default=DEFAULT_JOIN.spill, metavar="M",
                   help="past 200k prompts, a prompt within M (inner product) of its second-nearest IVF list "
                   "is also joined there (default %(default)s, 0 = off); finds the near-copies on list "
                   "boundaries, the ones --nprobe misses")
    p.add_argument("--max-list", type=_list_bound, default=DEFAULT_JOIN.max_list, metavar="N",
                   help="past 200k prompts, IVF lists of more than N prompts are split for the join (default "
                   "%(default)s = off); keeps the join's cost per prompt fixed as prompts grow, but finds "
                   "fewer near-copies than the unsplit lists")
    p.add_argument("--point-probes", type=_count, default=DEFAULT_JOIN.point_probes, metavar="P",
                   help="past 200k prompts, each prompt is also joined with its own P nearest IVF lists (default "
                   "%(default)s, 0 = off); finds the near-copies of prompts at the edge of their list, which a "
                   "list's --nprobe misses more often the more prompts there are; each one lengthens the "
                   "join")
    add_ray_option(p)
    p.set_defaults(func=cmd_scan)

    limit = argparse.ArgumentParser(add_help=False)
    limit.add_argument("--limit", "-n", type=int, default=50, help="rows to show (default 50; 0 = all)")

    p = sub.add_parser("accounts", parents=[common, fmt, limit], help="accounts by campaign score, with signals")
    p.add_argument("--min-score", type=float, default=0.0)
    p.set_defaults(func=cmd_accounts)
    p = sub.add_parser("rings", parents=[common, fmt, limit], help="rings of linked accounts, with evidence")
    p.set_defaults(func=cmd_rings)
    p = sub.add_parser("families", parents=[common, fmt, limit], help="near-copy families sent by several accounts")
    p.add_argument("--min-accounts", type=int, default=2)
    p.set_defaults(func=cmd_families)
    p = sub.add_parser("templates", parents=[common, fmt, limit], help="mined prompt templates")
    p.set_defaults(func=cmd_templates)
    p = sub.add_parser("report", parents=[common], help="write a Markdown or HTML report of the top rings",
                       description="Write a case report of the top rings and their evidence (.md or .html).")
    p.add_argument("--out", "-o", default="copyhound-report.md", help="output file (.md or .html)")
    p.add_argument("--top", type=int, default=10, help="rings to include")
    p.add_argument("--redact", action="store_true",
                   help="for sending out: prompts in the evidence as fingerprints and short excerpts, no "
                   "workspace path")
    p.set_defaults(func=cmd_report)

