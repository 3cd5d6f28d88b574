"""`copyhound serve`: the HTTP service over a workspace. Wired in by engine.cli.main via `add_commands`.

The service lives in the top-level `service` package, which imports the engine, never the reverse: this
verb opens the engine read-only and hands it to the `serve` front end found by entry point
(`engine.cli.common.load_frontend`), as `copyhound tui` does with the TUI.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.cli.common import load_frontend, number_between, open_engine, positive_int, whole
from engine.config import SERVE_HOST, SERVE_MAX_BODY, SERVE_PORT
from engine.errors import ServiceError
from engine.query.checker import DELTA_LIMIT, SYNC_EVERY

TOKEN_ENV = "COPYHOUND_TOKEN"
# Seconds a snapshot read waits for a writer before trying again a second later: short, so the service
# says promptly what it waits for; it never gives up.
READ_WAIT = 1.0


def port(text: str) -> int:
    value = whole(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value


def read_token(path: str | None) -> str | None:
    """The bearer token: the first line of --token-file, else $COPYHOUND_TOKEN, else None (no auth)."""
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ServiceError(f"{path}: cannot read the token file ({err})") from err
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise ServiceError(f"{path}: the token file is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def cmd_serve(args: argparse.Namespace) -> int:
    token = read_token(args.token_file)
    launch = load_frontend("serve")
    launch(open_engine(args, read_only=True, busy_timeout=READ_WAIT), host=args.host, port=args.port,
           token=token, max_body=args.max_body, delta_limit=args.delta_limit, sync_every=args.sync_every)
    return 0


def add_commands(sub, common, devices) -> None:
    p = sub.add_parser("serve", parents=[common, devices], help="answer online checks over HTTP",
                       description="Serve the workspace over HTTP, read-only: POST /v1/check (is this prompt "
                       "known campaign content, a near-copy of other accounts' prompts, or neither; and the "
                       "account's score), POST /v1/who-else, GET /v1/accounts/ID, /v1/rings/ID, /v1/health, "
                       "/metrics. Checked exchanges are appended to WORKSPACE/incoming/ for the next ingest. "
                       "See docs/service.md.")
    p.add_argument("--host", default=os.environ.get("COPYHOUND_HOST", SERVE_HOST),
                   help=f"address to listen on (default {SERVE_HOST}; env COPYHOUND_HOST)")
    p.add_argument("--port", type=port, default=os.environ.get("COPYHOUND_PORT", SERVE_PORT),
                   help=f"port (default {SERVE_PORT}; 0 picks a free one; env COPYHOUND_PORT)")
    p.add_argument("--token-file", metavar="FILE",
                   help=f"require 'Authorization: Bearer TOKEN' with the token in FILE (env {TOKEN_ENV} holds "
                   "the token itself); /v1/health stays open")
    p.add_argument("--max-body", type=positive_int, default=SERVE_MAX_BODY, metavar="BYTES",
                   help=f"largest request body accepted, else 413 (default {SERVE_MAX_BODY})")
    p.add_argument("--delta-limit", type=positive_int, default=None, metavar="N",
                   help="exchanges the in-memory index of prompts checked since the last index holds at most "
                   f"(default {DELTA_LIMIT})")
    p.add_argument("--sync-every", type=number_between(0.0, 60.0), default=SYNC_EVERY, metavar="SECONDS",
                   help="checked exchanges are written to WORKSPACE/incoming/ before the answer and fsynced "
                   f"every SECONDS (default {SYNC_EVERY}): a machine crash can lose that much; 0 fsyncs before "
                   "each answer, which makes every check wait for the disk")
    p.set_defaults(func=cmd_serve)
