"""Exceptions raised by the FAISS index store.

Every error message is a single line and names the file (or the array) it is
about, so that it can be logged or shown to an operator verbatim.
"""

from __future__ import annotations

__all__ = ["IndexCorruptError", "IndexMismatchError", "IndexStoreError"]


class IndexStoreError(Exception):
    """Base class for all errors of the ``index`` package."""


class IndexMismatchError(IndexStoreError):
    """The index (or the vectors offered to it) belongs to another model.

    Raised when the encoder name, the vector dimension, the metric or the
    vector count recorded in the manifest differ from what the caller expects
    or from what the index file actually holds.
    """


class IndexCorruptError(IndexStoreError):
    """An index file or its manifest is missing, truncated or unreadable."""
