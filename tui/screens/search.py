"""Search: type or paste a prompt; its nearest stored prompts appear as you type (debounced, in a worker)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TextArea

from tui import bindings
from tui.messages import MatchesFound, PromptSelected, SearchRequested
from tui.screens.base import fill, short, when
from tui.widgets.breadcrumbs import Breadcrumbs

# Seconds of quiet typing before a search starts: each keystroke would otherwise embed a prefix.
DEBOUNCE = 0.3


class SearchScreen(Screen):
    BINDINGS = bindings.SEARCH
    crumb = "Search"

    def compose(self) -> ComposeResult:
        yield Breadcrumbs(id="crumbs")
        yield Static("Type or paste a prompt (ctrl+↓ or tab: results, Enter on a result: prompt view)",
                     classes="section")
        yield TextArea(id="query", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        yield Static("", id="status", classes="status")
        yield DataTable(id="matches", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#matches", DataTable).add_columns("similarity", "exact", "accounts", "exch", "example account",
                                                          "last seen", "prompt")
        self._timer = None
        self.last_query = ""
        self.query_one("#query", TextArea).focus()

    def on_screen_resume(self) -> None:
        crumbs = [s.crumb for s in self.app.screen_stack if isinstance(getattr(s, "crumb", None), str)]
        self.query_one(Breadcrumbs).show(crumbs)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE, self._search)

    def _search(self) -> None:
        text = self.query_one("#query", TextArea).text
        if not text.strip():
            self.query_one("#matches", DataTable).clear()
            self.query_one("#status", Static).update("")
            return
        self.query_one("#status", Static).update("searching…")
        self.post_message(SearchRequested(self, text))

    def on_matches_found(self, message: MatchesFound) -> None:
        if message.text != self.query_one("#query", TextArea).text:
            return  # a stale answer to an older prefix
        self.last_query = message.text
        m = message.matches
        n_exact = sum(1 for x in m if x.exact)
        self.query_one("#status", Static).update(
            f"{len(m)} stored prompts near this one ({n_exact} exact normalised copies)" if m else
            "no stored prompt near this one")
        fill(self.query_one("#matches", DataTable), (
            (x.prompt_id, (f"{x.similarity:.3f}", "exact" if x.exact else "", str(x.n_accounts),
                           str(x.n_exchanges), short(x.example_account, 18), when(x.last_seen), short(x.text, 60)))
            for x in m))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.post_message(PromptSelected(int(event.row_key.value)))

    def action_focus_results(self) -> None:
        self.query_one("#matches", DataTable).focus()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
