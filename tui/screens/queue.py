"""Review queue: scored accounts, those no analyst has reviewed first, each group by descending score."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from engine import AccountPage
from tui import bindings
from tui.messages import VIEW_PAGE, AccountSelected, AccountsPageLoaded, QueueRequested
from tui.screens.base import PivotScreen, fill, score, selected_key, short


class QueueScreen(PivotScreen):
    """What to review next: a page of the engine's review queue; `m` marks the account under the cursor."""

    BINDINGS = PivotScreen.BINDINGS + [bindings.TRIAGE[0]] + bindings.PAGING
    crumb = "Review queue"

    def compose_body(self) -> ComposeResult:
        yield Static(id="queue-title", classes="section")
        yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)

    def setup(self) -> None:
        self.query_one(DataTable).add_columns("account", "score", "ring", "exch", "top signal", "review")

    def data_request(self) -> QueueRequested:
        return QueueRequested(self, self.offset, VIEW_PAGE)

    def on_accounts_page_loaded(self, message: AccountsPageLoaded) -> None:
        self.loaded_with(message.page)

    def show(self, page: AccountPage) -> None:
        self.data = page
        first = page.offset + 1 if page.rows else 0
        self.query_one("#queue-title", Static).update(
            f"Not reviewed first, most likely first ({first}–{page.offset + len(page.rows)} of {page.total:,})")
        fill(self.query_one(DataTable), (
            (a.account_id, (short(a.account_id, 24), score(a.score), "" if a.ring_id is None else str(a.ring_id),
                            f"{a.n_exchanges:,}", a.top_signal, _review(page, a.account_id)))
            for a in page.rows), keep_cursor=True)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.post_message(AccountSelected(event.row_key.value))

    def action_mark(self) -> None:
        key = selected_key(self.query_one(DataTable))
        if key is not None:
            self.open_mark("account", key)

    def action_next_page(self) -> None:
        if self.loaded and self.offset + VIEW_PAGE < self.data.total:
            self.request(self.offset + VIEW_PAGE)

    def action_prev_page(self) -> None:
        if self.loaded and self.offset > 0:
            self.request(self.offset - VIEW_PAGE)


def _review(page: AccountPage, account_id: str) -> str:
    mark = page.mark_of(account_id)
    if mark is None:
        return ""
    # A ring's mark reaches its members: say so ("confirmed, through ring 7").
    via = mark.note.split(":")[0] if mark.note.startswith("through ring") else ""
    return f"{mark.label}, {via}" if via else mark.label
