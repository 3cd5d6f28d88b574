"""One exception tree for everything a user can get wrong or run into.

The CLI and the TUI catch `CopyhoundError` at their boundary and show `str(err)`, which is always one
line; anything else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations


class CopyhoundError(Exception):
    """Base of every error copyhound reports to a user."""


class WorkspaceError(CopyhoundError):
    """The workspace folder is missing, unreadable, or of an unknown schema version."""


class WorkspaceBusyError(WorkspaceError):
    """Another process holds the workspace's write lock (a second writer)."""


class IngestError(CopyhoundError):
    """An input file was refused: bad rows, missing columns, unreadable format.

    `problems` holds every `FILE:LINE: reason` found (the message shows the first few).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class EmbeddingError(CopyhoundError):
    """The model could not be loaded or verified, or a vector has the wrong shape."""


class IndexStateError(CopyhoundError):
    """A FAISS index is missing, corrupt, or was built with another encoder or dimension."""


class QueryError(CopyhoundError):
    """A query (who-else, lookup) was malformed: empty prompt, unknown id, bad threshold."""


class NotFoundError(QueryError):
    """A lookup named an account, ring or prompt this workspace does not hold (the service's 404)."""


class DetectionError(CopyhoundError):
    """Scan or detection could not run (nothing embedded, inconsistent state)."""


class ResourceError(CopyhoundError):
    """DuckDB ran out of memory under its limit, or the workspace's disk is full; committed work is kept."""


class ServiceError(CopyhoundError):
    """`copyhound serve` could not start: its address is taken, its token file unreadable, a setting off."""


class ClusterError(CopyhoundError):
    """A Ray cluster could not be reached, or Ray is not installed."""
