"""Messages between screens and the App, one typed dataclass per event.

Pivots (`...Selected`) and requests (`...Requested`) bubble from a screen up to the App, which pushes a
screen or starts a worker; each request names the screen that asked, and the worker posts a past-tense
result (`...Loaded`, `MatchesFound`, `Marked`, `Exported`) to that screen only (results do not bubble).

Page sizes are defined here, once: a screen pages by them and its request carries them to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.screen import Screen

from engine import (
    AccountPage,
    AccountView,
    EvidenceExport,
    Mark,
    Overview,
    PromptMatch,
    PromptView,
    RingView,
)

# Accounts per page of the overview's account list (it shares the screen with the rings).
ACCOUNTS_PAGE = 50
# Rows per page of the prompt view (accounts) and of the account view (prompt groups).
VIEW_PAGE = 100


# ---------------------------------------------------------------------- navigation (pivots)
@dataclass
class PromptSelected(Message):
    prompt_id: int


@dataclass
class AccountSelected(Message):
    account_id: str


@dataclass
class RingSelected(Message):
    ring_id: int


# ---------------------------------------------------------------------- requests for data
@dataclass
class OverviewRequested(Message):
    """Workspace figures, top rings and the activity plot."""

    screen: Screen


@dataclass
class AccountsPageRequested(Message):
    """One page of scored accounts, by descending score."""

    screen: Screen
    offset: int = 0
    limit: int = ACCOUNTS_PAGE


@dataclass
class QueueRequested(Message):
    """One page of the review queue (not reviewed first, then by score); answered by AccountsPageLoaded."""

    screen: Screen
    offset: int = 0
    limit: int = VIEW_PAGE


@dataclass
class PromptViewRequested(Message):
    screen: Screen
    prompt_id: int
    offset: int = 0
    limit: int = VIEW_PAGE


@dataclass
class AccountViewRequested(Message):
    screen: Screen
    account_id: str
    offset: int = 0
    limit: int = VIEW_PAGE


@dataclass
class RingViewRequested(Message):
    screen: Screen
    ring_id: int


@dataclass
class SearchRequested(Message):
    screen: Screen
    text: str


@dataclass
class MarkRequested(Message):
    screen: Screen
    target_kind: str
    target_id: str
    label: str
    note: str


@dataclass
class ExportRequested(Message):
    screen: Screen
    target_kind: str
    target_id: str


# ---------------------------------------------------------------------- results (posted by workers)
@dataclass
class OverviewLoaded(Message, bubble=False):
    overview: Overview


@dataclass
class AccountsPageLoaded(Message, bubble=False):
    page: AccountPage


@dataclass
class PromptViewLoaded(Message, bubble=False):
    view: PromptView


@dataclass
class AccountViewLoaded(Message, bubble=False):
    view: AccountView


@dataclass
class RingViewLoaded(Message, bubble=False):
    view: RingView


@dataclass
class MatchesFound(Message, bubble=False):
    text: str
    matches: list[PromptMatch]


@dataclass
class Marked(Message, bubble=False):
    mark: Mark


@dataclass
class Exported(Message, bubble=False):
    export: EvidenceExport
