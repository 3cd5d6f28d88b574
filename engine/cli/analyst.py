"""CLI verbs of the analyst side: `tui`, `marks`, `export`. Wired in by engine.cli.main via `add_commands`.

Imports flow tui -> engine, never back, so `copyhound tui` cannot import the TUI package: the TUI
registers itself under the `copyhound.frontends` entry-point group (see pyproject.toml) and this command
looks it up by name (`engine.cli.common.load_frontend`). That also keeps textual out of every other verb's
start-up.
"""

from __future__ import annotations

import argparse

from engine import EXPORT_KINDS, MARK_KINDS, MARK_LABELS
from engine.cli.common import device, load_frontend, open_engine
from engine.cli.output import write_rows
from engine.config import analyst_name
from engine.errors import QueryError

MARK_COLUMNS = ("target_kind", "target_id", "label", "note", "created", "author")
REPORT_COLUMNS = ("signal", "n_reviewed", "n_flagged", "flagged_confirmed", "flagged_benign", "precision", "cut",
                  "cut_confirmed", "cut_benign", "cut_precision", "n_suspicious")
EXPORT_COLUMNS = ("target_kind", "target_id", "path", "n_accounts", "n_exchanges", "n_families", "n_signals",
                  "redacted")


def cmd_tui(args: argparse.Namespace) -> int:
    launch = load_frontend("tui")
    launch(open_engine(args))
    return 0


def cmd_marks(args: argparse.Namespace) -> int:
    engine = open_engine(args)
    if args.report:
        if args.label:
            raise QueryError("--report reads the marks; record a mark without it")
        cal = engine.analyst.calibration(target=args.target_precision)
        write_rows([r.to_dict() for r in cal.rows], REPORT_COLUMNS, args.format,
                   title=f"flags on reviewed accounts: {cal.n_confirmed} confirmed, {cal.n_benign} benign "
                         f"({cal.n_suspicious} suspicious counted apart, {cal.n_unscored} not scored)",
                   caption=f"cut: the lowest signal score keeping precision >= {cal.target:g} (flag score "
                           f"{cal.flag_score:g}); counts are accounts")
        return 0
    if args.label:
        if not (args.kind and args.target):
            raise QueryError("--label needs KIND and TARGET, e.g. `copyhound marks account acct_1 --label benign`")
        mark = engine.analyst.mark(args.kind, args.target, args.label, args.note or "", author=args.by)
        rows = [mark.to_dict()]
    else:
        rows = [m.to_dict() for m in engine.analyst.marks(target_kind=args.kind)]
    write_rows(rows, MARK_COLUMNS, args.format, title="marks")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    # A ring id that is not a number is refused by the facade (QueryError), in one line.
    result = open_engine(args).analyst.export_evidence(args.kind, args.target, redact=args.redact)
    write_rows([result.to_dict()], EXPORT_COLUMNS, args.format, title="evidence bundle")
    return 0


def add_commands(sub, common, fmt) -> None:
    p = sub.add_parser("tui", parents=[common], help="open the analyst TUI on the workspace",
                       description="Browse the workspace: overview, search-as-you-type, and pivots from a "
                       "prompt to every account that sent near-copies, on to their ring. Keys are in the footer.")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda or cuda:N, for embedding search queries")
    p.set_defaults(func=cmd_tui)

    p = sub.add_parser("marks", parents=[common, fmt], help="list or add triage marks, or report their precision",
                       description="Without --label: the latest mark of every marked target. With KIND TARGET "
                       "--label L: record a mark; confirmed and benign marks act on the next scans (watched or "
                       "discounted content). --report: precision of the flags per signal on reviewed accounts.")
    p.add_argument("kind", nargs="?", choices=MARK_KINDS, help="only marks of this kind")
    p.add_argument("target", nargs="?", help="account, ring, family or template id (with --label)")
    p.add_argument("--label", choices=MARK_LABELS, help="record this mark")
    p.add_argument("--note", default="", help="note to keep with the mark")
    p.add_argument("--by", default=analyst_name(), metavar="NAME",
                   help="who marks (default: $COPYHOUND_ANALYST, else the login name)")
    p.add_argument("--report", action="store_true",
                   help="precision of the flags per signal on reviewed accounts, and cut-offs keeping --target")
    p.add_argument("--target", dest="target_precision", type=float, default=0.9, metavar="P",
                   help="precision the suggested cut-offs keep (with --report; default 0.9)")
    p.set_defaults(func=cmd_marks)

    p = sub.add_parser("export", parents=[common, fmt], help="write an evidence bundle for an account or ring",
                       description="Write evidence.json, exchanges.csv, families.csv and signals.csv into "
                       "WORKSPACE/exports/KIND-ID-TIME/ (written to a temporary folder, then renamed).")
    p.add_argument("kind", choices=EXPORT_KINDS)
    p.add_argument("target", help="account id or ring id")
    p.add_argument("--redact", action="store_true",
                   help="for sending out: each prompt as its fingerprint and a short excerpt; no responses, "
                   "IPs, mark notes or workspace path (the folder name ends in -redacted)")
    p.set_defaults(func=cmd_export)

