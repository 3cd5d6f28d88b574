"""copyhound's HTTP service (`copyhound serve`): online checks at an API gateway over one workspace.

Imports flow service -> engine, never back: the engine's CLI finds this package through the
`copyhound.frontends` entry point `serve` (pyproject.toml), so `import engine` never loads Starlette or
uvicorn. The checks themselves (verdicts, the snapshot, the delta index) are the engine's
(`engine.query.checker`); this package is the HTTP layer over them.
"""

from service.app import Settings, create_app, run

__all__ = ["Settings", "create_app", "run"]
