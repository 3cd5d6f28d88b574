"""Overview: workspace figures, top rings and accounts (paged), flagged activity against all traffic."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from engine import AccountPage, Mark, Overview
from tui import bindings
from tui.messages import (
    ACCOUNTS_PAGE,
    AccountSelected,
    AccountsPageLoaded,
    AccountsPageRequested,
    OverviewLoaded,
    OverviewRequested,
    RingSelected,
)
from tui.screens.base import PivotScreen, fill, score, short, when
from tui.widgets.activity import ActivityChart


class OverviewScreen(PivotScreen):
    """Two requests fill it: the overview (figures, rings, plot) and a page of accounts, paged on its own."""

    BINDINGS = PivotScreen.BINDINGS + bindings.PAGING + bindings.QUEUE
    crumb = "Overview"

    def compose_body(self) -> ComposeResult:
        yield Static(id="figures", classes="head")
        yield Static("Activity: flagged accounts against all traffic", classes="section")
        yield ActivityChart(per_row_scale=True, id="activity")
        with Horizontal(id="lists"):
            with Vertical(id="rings-pane"):
                yield Static("Rings by score", classes="section")
                yield DataTable(id="rings", cursor_type="row", zebra_stripes=True)
            with Vertical(id="accounts-pane"):
                yield Static("Accounts by score", id="accounts-title", classes="section")
                yield DataTable(id="accounts", cursor_type="row", zebra_stripes=True)

    def setup(self) -> None:
        self.query_one("#rings", DataTable).add_columns("ring", "score", "members", "exch", "top signal", "mark")
        self.query_one("#accounts", DataTable).add_columns("account", "score", "ring", "exch", "top signal",
                                                           "mark")

    def data_request(self) -> OverviewRequested:
        return OverviewRequested(self)

    def request(self, offset: int | None = None) -> None:
        super().request()
        self._page()

    def on_overview_loaded(self, message: OverviewLoaded) -> None:
        self.loaded_with(message.overview)

    def on_accounts_page_loaded(self, message: AccountsPageLoaded) -> None:
        self.show_accounts(message.page)

    def show(self, ov: Overview) -> None:
        self.data = ov
        s = ov.status
        scan = when(s.last_scan) or "never (run `copyhound scan`)"
        self.query_one("#figures", Static).update(
            f"[b]{s.exchanges:,}[/] exchanges · [b]{s.accounts:,}[/] accounts · [b]{s.prompts:,}[/] prompts · "
            f"[b]{ov.n_flagged:,}[/] accounts flagged (score ≥ {ov.flag_score:.1f}) · last scan {scan}")
        self.query_one(ActivityChart).show(ov.activity)
        fill(self.query_one("#rings", DataTable), (
            (r.ring_id, (str(r.ring_id), score(r.score), str(len(r.accounts)), f"{r.n_exchanges:,}",
                         r.signals[0].name if r.signals else "", _label(ov.mark_of("ring", r.ring_id))))
            for r in ov.top_rings))

    def show_accounts(self, page: AccountPage) -> None:
        self.accounts_total = page.total
        fill(self.query_one("#accounts", DataTable), (
            (a.account_id, (short(a.account_id, 24), score(a.score), "" if a.ring_id is None else str(a.ring_id),
                            f"{a.n_exchanges:,}", a.top_signal, _label(page.mark_of(a.account_id))))
            for a in page.rows))
        first = page.offset + 1 if page.rows else 0
        self.query_one("#accounts-title", Static).update(
            f"Accounts by score ({first}–{page.offset + len(page.rows)} of {page.total:,})")

    accounts_total = 0
    accounts_offset = 0

    def action_next_page(self) -> None:
        if self.accounts_offset + ACCOUNTS_PAGE < self.accounts_total:
            self.accounts_offset += ACCOUNTS_PAGE
            self._page()

    def action_prev_page(self) -> None:
        if self.accounts_offset > 0:
            self.accounts_offset = max(0, self.accounts_offset - ACCOUNTS_PAGE)
            self._page()

    def _page(self) -> None:
        self.post_message(AccountsPageRequested(self, self.accounts_offset, ACCOUNTS_PAGE))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if event.data_table.id == "rings":
            self.post_message(RingSelected(int(key)))
        else:
            self.post_message(AccountSelected(key))


def _label(mark: Mark | None) -> str:
    return mark.label if mark else ""
