"""The copyhound analyst TUI: `CopyhoundApp` owns the Engine and runs every engine call in a worker.

Flow: a screen posts a request message (`PromptViewRequested`, `SearchRequested`, ...); the App's handler
for it starts `@work(thread=True, exclusive=True, group=...)`, the worker calls ONE engine method and
posts a past-tense result (`PromptViewLoaded`, `MatchesFound`, ...) to the screen that asked. Pivots
(`PromptSelected`, `AccountSelected`, `RingSelected`) push a screen; Escape pops it, so the screen stack
is the pivot path (shown as breadcrumbs). Messages are in `tui.messages`, keys in `tui.bindings`, layout
in `app.tcss`.

Concurrency: the UI thread never touches the database. The engine opens a DuckDB connection per call
and closes it, so a batch job (`copyhound scan`, `ingest`) can take the workspace between two calls.
When one holds the lock, the engine waits `busy_timeout` seconds and raises `WorkspaceBusyError`; the
worker then shows "workspace busy (a batch job is writing), retrying" and retries with backoff (0.5 s
doubling to 4 s) until the lock is released or the request is superseded (exclusive workers: a newer
request of the same group cancels the older, which stops at its next retry). Any other
`CopyhoundError` becomes a one-line error notice; nothing the engine raises crashes the TUI.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.message import Message
from textual.screen import Screen
from textual.worker import get_current_worker

from engine import CopyhoundError, Engine, Overview, WorkspaceBusyError
from engine.config import analyst_name
from tui import bindings
from tui.messages import (
    AccountSelected,
    AccountsPageLoaded,
    AccountsPageRequested,
    AccountViewLoaded,
    AccountViewRequested,
    Exported,
    ExportRequested,
    Marked,
    MarkRequested,
    MatchesFound,
    OverviewLoaded,
    OverviewRequested,
    PromptSelected,
    PromptViewLoaded,
    PromptViewRequested,
    QueueRequested,
    RingSelected,
    RingViewLoaded,
    RingViewRequested,
    SearchRequested,
)
from tui.screens.account import AccountScreen
from tui.screens.overview import OverviewScreen
from tui.screens.prompt import PromptScreen
from tui.screens.queue import QueueScreen
from tui.screens.ring import RingScreen
from tui.screens.search import SearchScreen

log = logging.getLogger(__name__)

BUSY_NOTICE = "workspace busy (a batch job is writing), retrying"
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


class CopyhoundApp(App):
    """The analyst TUI over one workspace. Pass an `Engine` (tests, custom settings) or a folder."""

    CSS_PATH = "app.tcss"
    TITLE = "copyhound"
    BINDINGS = bindings.APP

    def __init__(self, engine: Engine | str | os.PathLike[str], *, warm_encoder: bool = True) -> None:
        super().__init__()
        self.engine = engine if isinstance(engine, Engine) else Engine(Path(engine), create=False)
        self.warm_encoder = warm_encoder
        self.notices: list[str] = []  # every notice shown, oldest first (tests and logs read it)
        self.author = analyst_name()  # who the marks made here are by
        self.overview_data: Overview | None = None
        # Engine.encoder builds the model on first use and is not guarded against two threads doing it
        # at once: the warm-up worker holds this until the model is in, and search waits for it.
        self._encoder_ready = threading.Event()
        if not warm_encoder:
            self._encoder_ready.set()

    def get_default_screen(self) -> Screen:
        return OverviewScreen()

    def on_mount(self) -> None:
        if self.warm_encoder:
            self._warm_encoder()

    # ------------------------------------------------------------------ notices
    def show_notice(self, text: str, severity: str = "information") -> None:
        """One line at the bottom right; kept in `self.notices`."""
        self.notices.append(text)
        self.notify(text, severity=severity, timeout=4 if severity != "error" else 8)

    # ------------------------------------------------------------------ navigation
    def on_prompt_selected(self, message: PromptSelected) -> None:
        self.push_screen(PromptScreen(message.prompt_id))

    def on_account_selected(self, message: AccountSelected) -> None:
        self.push_screen(AccountScreen(message.account_id))

    def on_ring_selected(self, message: RingSelected) -> None:
        self.push_screen(RingScreen(message.ring_id))

    def action_overview(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_search(self) -> None:
        if not isinstance(self.screen, SearchScreen):
            self.push_screen(SearchScreen())

    def action_queue(self) -> None:
        if not isinstance(self.screen, QueueScreen):
            self.push_screen(QueueScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Overview", "Workspace figures, top rings and accounts", self.action_overview)
        yield SystemCommand("Search", "Find near-copies of a prompt as you type", self.action_search)
        yield SystemCommand("Review queue", "Accounts not reviewed yet, most likely first", self.action_queue)
        ov = self.overview_data
        if ov is not None and ov.top_families:
            fam = ov.top_families[0]
            yield SystemCommand("Prompt view: most widely sent family",
                                f"family {fam.family_id}, {fam.n_accounts} accounts",
                                lambda: self.post_message(PromptSelected(fam.family_id)))
        if ov is not None and ov.top_accounts:
            acc = ov.top_accounts[0]
            yield SystemCommand("Account view: top account", f"{acc.account_id}, score {acc.score:.2f}",
                                lambda: self.post_message(AccountSelected(acc.account_id)))
        if ov is not None and ov.top_rings:
            ring = ov.top_rings[0]
            yield SystemCommand("Ring view: top ring", f"ring {ring.ring_id}, {len(ring.accounts)} members",
                                lambda: self.post_message(RingSelected(ring.ring_id)))

    # ------------------------------------------------------------------ requests -> workers
    def on_overview_requested(self, message: OverviewRequested) -> None:
        self._load_overview(message.screen)

    def on_accounts_page_requested(self, message: AccountsPageRequested) -> None:
        self._load_accounts(message.screen, message.offset, message.limit)

    def on_queue_requested(self, message: QueueRequested) -> None:
        self._load_queue(message.screen, message.offset, message.limit)

    def on_prompt_view_requested(self, message: PromptViewRequested) -> None:
        self._load_prompt(message.screen, message.prompt_id, message.offset, message.limit)

    def on_account_view_requested(self, message: AccountViewRequested) -> None:
        self._load_account(message.screen, message.account_id, message.offset, message.limit)

    def on_ring_view_requested(self, message: RingViewRequested) -> None:
        self._load_ring(message.screen, message.ring_id)

    def on_search_requested(self, message: SearchRequested) -> None:
        self._search(message.screen, message.text)

    def on_mark_requested(self, message: MarkRequested) -> None:
        self._mark(message.screen, message.target_kind, message.target_id, message.label, message.note)

    def on_export_requested(self, message: ExportRequested) -> None:
        self._export(message.screen, message.target_kind, message.target_id)

    # ------------------------------------------------------------------ workers (one engine call each)
    @work(thread=True, exclusive=True, group="overview")
    def _load_overview(self, screen: Screen) -> None:
        data = self._call(self.engine.analyst.overview, limit=20)
        if data is not None:
            self.overview_data = data
            self._deliver(screen, OverviewLoaded(data))

    @work(thread=True, exclusive=True, group="accounts")
    def _load_accounts(self, screen: Screen, offset: int, limit: int) -> None:
        page = self._call(self.engine.analyst.account_page, offset=offset, limit=limit)
        if page is not None:
            self._deliver(screen, AccountsPageLoaded(page))

    @work(thread=True, exclusive=True, group="queue")
    def _load_queue(self, screen: Screen, offset: int, limit: int) -> None:
        page = self._call(self.engine.analyst.review_queue, offset=offset, limit=limit)
        if page is not None:
            self._deliver(screen, AccountsPageLoaded(page))

    @work(thread=True, exclusive=True, group="prompt")
    def _load_prompt(self, screen: Screen, prompt_id: int, offset: int, limit: int) -> None:
        view = self._call(self.engine.analyst.prompt_view, prompt_id, limit=limit, offset=offset)
        if view is not None:
            self._deliver(screen, PromptViewLoaded(view))

    @work(thread=True, exclusive=True, group="account")
    def _load_account(self, screen: Screen, account_id: str, offset: int, limit: int) -> None:
        view = self._call(self.engine.analyst.account_view, account_id, limit=limit, offset=offset)
        if view is not None:
            self._deliver(screen, AccountViewLoaded(view))

    @work(thread=True, exclusive=True, group="ring")
    def _load_ring(self, screen: Screen, ring_id: int) -> None:
        view = self._call(self.engine.analyst.ring_view, ring_id)
        if view is not None:
            self._deliver(screen, RingViewLoaded(view))

    @work(thread=True, exclusive=True, group="search")
    def _search(self, screen: Screen, text: str) -> None:
        self._encoder_ready.wait()
        matches = self._call(self.engine.nearest_prompts, text, k=50, floor=0.5)
        if matches is not None:
            self._deliver(screen, MatchesFound(text, matches))

    @work(thread=True, exclusive=True, group="mark")
    def _mark(self, screen: Screen, kind: str, target_id: str, label: str, note: str) -> None:
        mark = self._call(self.engine.analyst.mark, kind, target_id, label, note, author=self.author)
        if mark is not None:
            self.call_from_thread(self.show_notice, f"marked {kind} {target_id} {label}")
            self._deliver(screen, Marked(mark))

    @work(thread=True, exclusive=True, group="export")
    def _export(self, screen: Screen, kind: str, target_id: str) -> None:
        result = self._call(self.engine.analyst.export_evidence, kind, target_id)
        if result is not None:
            self.call_from_thread(self.show_notice, f"evidence written to {result.path}")
            self._deliver(screen, Exported(result))

    @work(thread=True, exclusive=True, group="warm")
    def _warm_encoder(self) -> None:
        # Loading the model takes seconds: do it now, not on the first keystroke in search.
        try:
            self.engine.encoder  # noqa: B018
        except CopyhoundError as err:
            self.call_from_thread(self.show_notice, str(err), "error")
        finally:
            self._encoder_ready.set()

    # ------------------------------------------------------------------ worker plumbing
    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one engine call in this worker thread; busy → notice and retry; other errors → notice."""
        worker = get_current_worker()
        attempt = 0
        while not worker.is_cancelled:
            try:
                return fn(*args, **kwargs)
            except WorkspaceBusyError:
                if worker.is_cancelled:
                    return None
                self.call_from_thread(self.show_notice, BUSY_NOTICE, "warning")
                time.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
                attempt += 1
            except CopyhoundError as err:
                self.call_from_thread(self.show_notice, str(err).splitlines()[0], "error")
                return None
        return None

    def _deliver(self, screen: Screen, message: Message) -> None:
        """Post a worker's result to the screen that asked, unless a newer request superseded it."""
        if not get_current_worker().is_cancelled:
            screen.post_message(message)


LOG_NAME = "tui.log"


@contextmanager
def logs_off_screen(path: Path) -> Iterator[Path | None]:
    """While the TUI owns the terminal, log records (and Python warnings) go to `path`, not to stderr.

    A stream handler writes straight to the terminal under Textual's screen (the encoder's "loaded ..."
    line landed on the first row), so the root logger's stream handlers are set aside and restored after.
    The file is appended to; if it cannot be opened, records are dropped rather than drawn. Yields the
    path written to, or None.
    """
    root = logging.getLogger()
    aside = [h for h in root.handlers if isinstance(h, logging.StreamHandler)
             and not isinstance(h, logging.FileHandler)]
    try:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        written: Path | None = path
    except OSError:
        handler, written = logging.NullHandler(), None
    for h in aside:
        root.removeHandler(h)
    root.addHandler(handler)
    logging.captureWarnings(True)
    # transformers draws a "Loading weights" bar on stderr while the warm-up worker loads the model.
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers.utils.logging" in sys.modules:
        sys.modules["transformers.utils.logging"].disable_progress_bar()
    try:
        yield written
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        for h in aside:
            root.addHandler(h)


def run(workspace: Engine | str | os.PathLike[str]) -> None:
    """Open the TUI on an Engine or a workspace folder. `copyhound tui` reaches this through the
    `copyhound.frontends` entry point, because the engine's CLI may not import this package.
    Logs go to WORKSPACE/tui.log while it runs (see `logs_off_screen`)."""
    app = CopyhoundApp(workspace)
    with logs_off_screen(app.engine.workspace / LOG_NAME):
        app.run()
