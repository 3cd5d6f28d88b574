"""The `copyhound` command line: thin verbs over `engine.Engine`.

Results go to stdout (a table for people, --format csv|json|jsonl|parquet for machines); logs and
progress go to stderr. A `CopyhoundError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine.cli.analyst import add_commands as add_analyst_commands
from engine.cli.common import Parser, add_ray_option, device, open_engine, positive_int, progress_bar
from engine.cli.detect import add_commands as add_detection_commands
from engine.cli.output import FORMATS, write_rows
from engine.cli.serve import add_commands as add_serve_commands
from engine.config import (
    DEFAULT_THRESHOLD,
    ONNX_NAME,
    STATIC_NAME,
    thresholds_for,
)
from engine.errors import CopyhoundError, QueryError

log = logging.getLogger("copyhound")

WHO_ELSE_COLUMNS = ("query_index", "query", "account_id", "n_matches", "max_similarity", "first_seen",
                    "last_seen", "exact", "example")


def _parse_map(items: list[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise CopyhoundError(f"--map takes FIELD=COLUMN, got {item!r}")
        field, column = item.split("=", 1)
        mapping[field.strip()] = column.strip()
    return mapping


def _write(args, rows: list[dict], columns, title: str | None = None) -> None:
    write_rows(rows, columns, args.format, title=title)


# ---------------------------------------------------------------------- commands
def cmd_ingest(args: argparse.Namespace) -> int:
    engine = open_engine(args, create=True)  # the one verb that makes a workspace
    with progress_bar(args) as progress:
        result = engine.ingest(args.files, mapping=_parse_map(args.map), on_error=args.on_error,
                               progress=progress)
    rows = [f.to_dict() for f in result.files]
    _write(args, rows, ("path", "format", "rows_read", "rows_loaded", "rows_duplicate", "rows_rejected",
                        "new_prompts", "already_ingested", "quarantine", "seconds"), title="ingest")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    engine = open_engine(args)
    with progress_bar(args) as progress:
        result = engine.embed(progress=progress, factory=args.factory)
    _write(args, [result.to_dict()], ("encoder", "embedded", "already_embedded", "shards_written",
                                      "index_count", "index_factory", "prompts_per_second", "seconds"),
           title="embed")
    return 0


def _read_queries(path: str) -> list[str]:
    if path == "-":
        lines = sys.stdin.read().splitlines()
        source = "<stdin>"
    else:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise QueryError(f"{path}: cannot read query file ({err})") from err
        source = path
    queries: list[str] = []
    jsonl = path.endswith((".jsonl", ".ndjson"))
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if jsonl:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise QueryError(f"{source}:{number}: malformed JSON ({err.msg})") from err
            if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
                raise QueryError(f"{source}:{number}: expected an object with a string field 'prompt'")
            queries.append(obj["prompt"])
        else:
            queries.append(line)
    if not queries:
        raise QueryError(f"{source}: no queries found")
    return queries


def cmd_who_else(args: argparse.Namespace) -> int:
    if bool(args.prompt) == bool(args.input):
        raise QueryError("give either a PROMPT or --input FILE")
    queries = [args.prompt] if args.prompt else _read_queries(args.input)
    engine = open_engine(args)
    result = engine.who_else(queries, threshold=args.threshold)
    if result.unindexed_prompts:
        log.warning("%d stored prompts are not embedded yet and were not searched: run `copyhound embed`",
                    result.unindexed_prompts)
    rows = [r.to_dict() for r in result.rows]
    if args.format == "table":
        rows = [dict(r, query=_short(r["query"], 40), example=_short(r["example"], 60)) for r in rows]
    _write(args, rows, WHO_ELSE_COLUMNS, title=f"who else asked this (cosine >= {result.threshold:.2f})")
    log.info("%d queries, %d (query, account) rows", result.n_queries, len(result.rows))
    return 0


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_status(args: argparse.Namespace) -> int:
    engine = open_engine(args)
    status = engine.status().to_dict()
    status.pop("extra", None)
    _write(args, [status], tuple(status), title="workspace")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from synth import SynthConfig, write_synth

    with progress_bar(args) as progress:
        result = write_synth(SynthConfig(exchanges=args.exchanges, seed=args.seed, profile=args.profile), Path(args.out),
                             progress=lambda done, total: progress("synth", done, total))
    rows = [{"campaign_id": c.campaign_id, "kind": c.kind, "accounts": len(c.accounts),
             "exchanges": c.exchanges, "description": c.description} for c in result.campaigns]
    _write(args, rows, ("campaign_id", "kind", "accounts", "exchanges", "description"),
           title=f"{result.exchanges} exchanges from {result.accounts} accounts -> {result.path} "
                 f"(truth: {result.truth_path})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.cli.demo import run_demo

    workspace = Path(args.workspace or "copyhound-demo")
    with progress_bar(args) as progress:
        run_demo(workspace, exchanges=args.exchanges, out=sys.stdout, progress=progress, encoder=args.encoder)
    return 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", "-w", default=None,
                        help="workspace folder (env COPYHOUND_WORKSPACE; default ./copyhound-data)")
    common.add_argument("--quiet", "-q", action="store_true", help="only warnings and errors on stderr")
    common.add_argument("--verbose", "-v", action="store_true", help="debug logging on stderr")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", "-f", choices=FORMATS, default=os.environ.get("COPYHOUND_FORMAT", "table"),
                     help="output format on stdout (default table; env COPYHOUND_FORMAT)")
    devices = argparse.ArgumentParser(add_help=False)
    devices.add_argument("--device", type=device, default=os.environ.get("COPYHOUND_DEVICE", "cpu"),
                         help="cpu, cuda or cuda:N (env COPYHOUND_DEVICE)")
    devices.add_argument("--encoder", "-e", default=os.environ.get("COPYHOUND_ENCODER"),
                        help="minilm (all-MiniLM-L6-v2), onnx (the same model in int8 on onnxruntime, "
                        "faster on CPU; pip install 'copyhound[onnx]') or static (a word-piece table "
                        "distilled from it, the fastest and the coarsest, with its own thresholds; see "
                        "scan --recheck); default: the encoder the workspace already uses, else minilm "
                        "(env COPYHOUND_ENCODER)")

    parser = Parser(
        prog="copyhound",
        description="Find distillation campaigns in an AI provider's prompt traffic.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", parents=[common, fmt], help="load exchange files (JSONL, CSV, Parquet; .gz too)",
                       description="Load exchange files into the workspace. Required fields: account_id, "
                       "timestamp (ISO 8601 or epoch seconds), prompt; optional: exchange_id, response, "
                       "model, ip; other columns are kept as metadata. A file already ingested is skipped.")
    p.add_argument("files", nargs="+", help="files to load")
    p.add_argument("--map", action="append", metavar="FIELD=COLUMN",
                   help="read FIELD from COLUMN, e.g. --map prompt=text (repeatable)")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                   help="fail: refuse a file with any bad row and write nothing (default); "
                   "skip: load the good rows and write the bad ones to WORKSPACE/quarantine/")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("embed", parents=[common, fmt, devices], help="embed new prompts and update the index",
                       description="Embed prompts not embedded yet (resumable: each shard is saved as it "
                       "finishes) and add them to the FAISS index.")
    p.add_argument("--factory", default=None,
                   help="FAISS factory string (default: exact below 200k prompts, IVF+SQ8 above)")
    add_ray_option(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("who-else", parents=[common, fmt, devices], help="every account that sent a near-copy",
                       description="For each query prompt, every account that sent a near-copy: exact "
                       "normalised copies always, and prompts at cosine >= threshold.")
    p.add_argument("prompt", nargs="?", help="the prompt to look for")
    p.add_argument("--input", "-i", help="file of queries: text (one per line) or .jsonl with a 'prompt' field; - for stdin")
    p.add_argument("--threshold", "-t", type=float, default=None,
                   help=f"cosine threshold (default: the encoder's own, {DEFAULT_THRESHOLD} for minilm, "
                   f"{thresholds_for(ONNX_NAME)[0]} for onnx, {thresholds_for(STATIC_NAME)[0]} for static)")
    p.set_defaults(func=cmd_who_else)

    p = sub.add_parser("status", parents=[common, fmt, devices], help="workspace figures")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("synth", parents=[common, fmt], help="generate synthetic traffic with planted campaigns",
                       description="Write synthetic exchanges with ground truth (OUT.truth.json beside OUT).")
    p.add_argument("--exchanges", "-n", type=positive_int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", "-o", required=True, help="output file (.jsonl, .jsonl.gz, .csv or .parquet)")
    p.add_argument("--profile", choices=("default", "season"), default="default",
                   help="default: small campaigns in six columns; season: campaigns at the scale of a real "
                   "distillation season (thousands of accounts per million exchanges, shared public prompt "
                   "banks with organic bystanders, diluted/thin/heavy accounts, single-account template "
                   "integrations) plus client, key_created and payment columns")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("demo", parents=[common, devices], help="generate, ingest, embed and scan a demo workspace",
                       description="Generate ~20,000 exchanges with planted campaigns into ./copyhound-demo "
                       "(or --workspace), ingest, embed, index and scan them, and show what was found.")
    p.add_argument("--exchanges", "-n", type=positive_int, default=20_000)
    p.set_defaults(func=cmd_demo)

    add_detection_commands(sub, common, fmt, devices)
    add_analyst_commands(sub, common, fmt)
    add_serve_commands(sub, common, devices)
    return parser


def _hide_model_progress_bars() -> None:
    """-q: transformers draws a "Loading weights" bar on stderr whenever it loads a model (MiniLM, and
    the transformer the fast tiers are distilled from). Both switches: the variable for an import still
    to come, the call for one already made in this process."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers.utils.logging" in sys.modules:
        sys.modules["transformers.utils.logging"].disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "faiss", "httpx", "urllib3", "filelock", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.quiet:
        _hide_model_progress_bars()
    started = time.monotonic()
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = func(args)
    except CopyhoundError as err:
        print(f"copyhound: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("copyhound: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`copyhound who-else ... | head`): not an error. Point stdout at devnull
        # so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    log.debug("%s done in %.1f s", args.command, time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
