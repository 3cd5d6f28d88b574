"""Messages between screens and the App.

Requests (present tense) bubble from a screen up to the App, which pushes a screen or starts a worker;
results (past tense) are posted by a worker to the screen that asked.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


# ---------------------------------------------------------------------- navigation (pivots)
class PromptSelected(Message):
    def __init__(self, prompt_id: int) -> None:
        super().__init__()
        self.prompt_id = int(prompt_id)


class AccountSelected(Message):
    def __init__(self, account_id: str) -> None:
        super().__init__()
        self.account_id = str(account_id)


class RingSelected(Message):
    def __init__(self, ring_id: int) -> None:
        super().__init__()
        self.ring_id = int(ring_id)


# ---------------------------------------------------------------------- requests for data
class ViewRequested(Message):
    """A screen wants its data: `kind` is overview | accounts | prompt | account | ring."""

    def __init__(self, screen: Any, kind: str, key: Any = None, offset: int = 0) -> None:
        super().__init__()
        self.screen = screen
        self.kind = kind
        self.key = key
        self.offset = offset


class SearchRequested(Message):
    def __init__(self, screen: Any, text: str) -> None:
        super().__init__()
        self.screen = screen
        self.text = text


class MarkRequested(Message):
    def __init__(self, screen: Any, target_kind: str, target_id: str, label: str, note: str) -> None:
        super().__init__()
        self.screen = screen
        self.target_kind = target_kind
        self.target_id = str(target_id)
        self.label = label
        self.note = note


class ExportRequested(Message):
    def __init__(self, screen: Any, target_kind: str, target_id: str) -> None:
        super().__init__()
        self.screen = screen
        self.target_kind = target_kind
        self.target_id = str(target_id)


# ---------------------------------------------------------------------- results (posted by workers)
class ViewLoaded(Message):
    """A view's data arrived: `data` is the engine's result (Overview, PromptView, ...)."""

    bubble = False

    def __init__(self, kind: str, data: Any) -> None:
        super().__init__()
        self.kind = kind
        self.data = data


class MatchesFound(Message):
    bubble = False

    def __init__(self, text: str, matches: list) -> None:
        super().__init__()
        self.text = text
        self.matches = matches


class Marked(Message):
    bubble = False

    def __init__(self, mark: Any) -> None:
        super().__init__()
        self.mark = mark


class Exported(Message):
    bubble = False

    def __init__(self, export: Any) -> None:
        super().__init__()
        self.export = export
