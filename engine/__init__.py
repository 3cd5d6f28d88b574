"""copyhound's headless engine: `Engine` opened on a workspace folder, and the result types it returns.

Importing this package loads neither torch nor textual: the model is loaded on the first embedding.
"""

from engine.api import Engine
from engine.config import EngineConfig
from engine.errors import CopyhoundError
from engine.models import (
    EmbedResult,
    FileIngest,
    IngestResult,
    PromptMatch,
    WhoElseResult,
    WhoElseRow,
    WorkspaceStatus,
)

__all__ = [
    "CopyhoundError",
    "EmbedResult",
    "Engine",
    "EngineConfig",
    "FileIngest",
    "IngestResult",
    "PromptMatch",
    "WhoElseResult",
    "WhoElseRow",
    "WorkspaceStatus",
]
