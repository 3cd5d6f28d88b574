"""Runs the real service in its own process, for the tests: `python -m tests.service.server CONFIG_JSON`.

The same call `copyhound serve` makes once it has parsed its options (engine.cli.serve): an Engine opened
read-only on the workspace, handed to `service.run`. Port 0 takes a free port; the log line
"listening on http://HOST:PORT" on stderr says which.
"""

from __future__ import annotations

import json
import logging
import sys

from engine import Engine
from service import run


def main(argv: list[str]) -> None:
    config = json.loads(argv[0])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    engine = Engine(config["workspace"], read_only=True, busy_timeout=1.0)
    run(engine, host="127.0.0.1", port=0, token=config.get("token"),
        max_body=config.get("max_body", 2 * 1024 * 1024), delta_limit=config.get("delta_limit"))


if __name__ == "__main__":
    main(sys.argv[1:])
