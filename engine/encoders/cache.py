"""Derived models cached in a workspace (`models/`), each beside a JSON sidecar that vouches for it.

The fast tiers (the static table, the int8 ONNX model) are built from the packaged all-MiniLM-L6-v2 on
first use. The built file is what every vector of the workspace was made with, so it is kept, and
checked at every load: its sidecar holds its own sha256 and the sha256 of the weights it came from. A
corrupt file or one built from other weights is refused with a message saying to delete it, never
silently used or silently rebuilt (a rebuild on another CPU or library version could drift the index).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from engine.errors import EmbeddingError
from engine.files import atomic_path, atomic_write, file_sha256


def check_cached(path: Path, meta_path: Path, source_sha: str, *, made: str, redo: str) -> dict | None:
    """The sidecar of a cached model that matches it and `source_sha`; None when either file is absent.

    `made` and `redo` word the errors ("distilled" / "re-distil", "built" / "rebuild").
    Raises EmbeddingError when the sidecar is unreadable, names other source weights, or another sha256.
    """
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as err:
        raise EmbeddingError(f"{meta_path}: unreadable ({err}); delete it and {path.name} to {redo}") from err
    if not isinstance(meta, dict) or meta.get("source_sha256") != source_sha:
        raise EmbeddingError(f"{path} was {made} from other weights than the installed "
                             f"all-MiniLM-L6-v2; its vectors would not match the index: delete it to {redo}")
    actual = file_sha256(path)
    if actual != meta.get("sha256"):
        raise EmbeddingError(f"{path} has sha256 {actual[:16]}..., its sidecar says "
                             f"{str(meta.get('sha256'))[:16]}...: the file is corrupt; delete both to {redo}")
    return meta


def write_cached(path: Path, meta_path: Path, write: Callable[[Path], None], meta: dict) -> None:
    """Write a model through `write(temp_path)`, then its sidecar, each renamed into place when complete.

    The sidecar gets the file's sha256 and a creation time added to `meta`. The model is renamed before
    its sidecar is written, so a crash between the two leaves a model without a sidecar: absent to
    `check_cached`, rebuilt on the next use.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write(tmp)
    meta = {**meta, "sha256": file_sha256(path), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with atomic_write(meta_path, "w") as fh:
        fh.write(json.dumps(meta, indent=1))
