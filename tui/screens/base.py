"""What every pivot screen shares: breadcrumbs, footer, Escape to go back, a data request on mount."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui import bindings
from tui.messages import Marked, MarkRequested
from tui.screens.mark import MarkDialog
from tui.widgets.breadcrumbs import Breadcrumbs


class PivotScreen(Screen):
    """A screen that shows one engine result: `data_request()` asks for it, `crumb` names it in the path.

    Each subclass handles its own result message (`on_prompt_view_loaded`, ...) by calling `loaded_with`.
    """

    BINDINGS = bindings.BACK + bindings.REFRESH
    crumb = ""
    offset = 0
    loaded = False
    data: Any = None

    def compose_body(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        yield Breadcrumbs(id="crumbs")
        yield Static("loading…", id="status", classes="status")
        yield from self.compose_body()
        yield Footer()

    # Textual calls a handler of every class in the MRO, so subclasses override these hooks, not on_mount.
    def on_mount(self) -> None:
        self.setup()
        self.request()

    def setup(self) -> None:
        """Add table columns and the like, before the first request."""

    def on_screen_resume(self) -> None:
        crumbs = [s.crumb for s in self.app.screen_stack if isinstance(getattr(s, "crumb", None), str)]
        self.query_one(Breadcrumbs).show(crumbs)

    def request(self, offset: int | None = None) -> None:
        if offset is not None:
            self.offset = max(0, offset)
        self.loaded = False
        self.post_message(self.data_request())

    def data_request(self) -> Message:  # pragma: no cover - every screen overrides it
        """The request message for this screen's data at `self.offset`."""
        raise NotImplementedError

    def loaded_with(self, data: Any) -> None:
        """Show the engine result this screen asked for."""
        self.query_one("#status", Static).update("")
        self.show(data)
        self.loaded = True

    def show(self, data: Any) -> None:  # pragma: no cover - every screen overrides it
        raise NotImplementedError

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_refresh(self) -> None:
        self.request()

    def open_mark(self, target_kind: str, target_id: str) -> None:
        """Ask for a label and note, then post a MarkRequested for the App's worker."""
        def done(result: tuple[str, str] | None) -> None:
            if result is not None:
                self.post_message(MarkRequested(self, target_kind, target_id, result[0], result[1]))

        self.app.push_screen(MarkDialog(target_kind, target_id), done)

    def on_marked(self, message: Marked) -> None:
        self.request()  # show the new mark everywhere on this screen

    def set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)


def when(ts: datetime | None) -> str:
    return "" if ts is None else ts.strftime("%Y-%m-%d %H:%M")


def short(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def score(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def fill(table: DataTable, rows, *, keep_cursor: bool = False) -> None:
    """Replace a table's rows: `rows` is an iterable of (key, cells)."""
    row = table.cursor_row if keep_cursor else 0
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=str(key))
    if table.row_count:
        table.move_cursor(row=min(row, table.row_count - 1))


def selected_key(table: DataTable) -> str | None:
    if not table.row_count:
        return None
    key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
    return key.value
