"""Prompt view: the prompt, its family and template, and every account that sent a near-copy (paged)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from engine import PromptView
from tui import bindings
from tui.messages import VIEW_PAGE, AccountSelected, PromptViewLoaded, PromptViewRequested
from tui.screens.base import PivotScreen, fill, score, short, when


class PromptScreen(PivotScreen):
    """`m` / `t` mark the prompt's family / template: benign stops it counting as evidence in the next scans,
    confirmed watches it (engine.detect.watchlist)."""

    BINDINGS = PivotScreen.BINDINGS + bindings.PAGING + bindings.MARK_ITEMS

    def __init__(self, prompt_id: int) -> None:
        super().__init__()
        self.prompt_id = int(prompt_id)

    @property
    def crumb(self) -> str:
        return f"Prompt #{self.prompt_id}"

    def data_request(self) -> PromptViewRequested:
        return PromptViewRequested(self, self.prompt_id, self.offset, VIEW_PAGE)

    def on_prompt_view_loaded(self, message: PromptViewLoaded) -> None:
        self.loaded_with(message.view)

    def compose_body(self) -> ComposeResult:
        yield Static(id="prompt-text", classes="quote")
        yield Static(id="prompt-meta", classes="head")
        yield Static("Accounts that sent it or a near-copy", id="accounts-title", classes="section")
        yield DataTable(id="prompt-accounts", cursor_type="row", zebra_stripes=True)

    def setup(self) -> None:
        self.query_one(DataTable).add_columns("account", "exch", "max sim", "exact", "first", "last", "score",
                                              "ring", "mark")

    def show(self, v: PromptView) -> None:
        self.data = v
        self.query_one("#prompt-text", Static).update(short(v.text, 600))
        fam = (f"family {v.family_id} ({v.family_prompts} prompts; centre: {short(v.family_center, 50)})"
               if v.family_id is not None else "no family")
        tpl = f"template {v.template_id}: {short(v.template_pattern, 60)}" if v.template_id is not None else "no template"
        self.query_one("#prompt-meta", Static).update(
            f"[b]{v.n_exchanges}[/] exchanges by [b]{v.n_accounts}[/] accounts · [b]{v.n_near_copies}[/] near-copies · "
            f"seen {when(v.first_seen)} – {when(v.last_seen)}\n{fam}\n{tpl}")
        self.query_one("#accounts-title", Static).update(
            f"Accounts that sent it or a near-copy ({v.offset + 1 if v.accounts else 0}–"
            f"{v.offset + len(v.accounts)} of {v.total_accounts})")
        fill(self.query_one(DataTable), (
            (a.account_id, (short(a.account_id, 24), str(a.n_exchanges), f"{a.max_similarity:.3f}",
                            "exact" if a.exact else "", when(a.first_seen), when(a.last_seen), score(a.score),
                            "" if a.ring_id is None else str(a.ring_id), a.mark or ""))
            for a in v.accounts))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.post_message(AccountSelected(event.row_key.value))

    def action_mark_family(self) -> None:
        if self.loaded and self.data.family_id is not None:
            self.open_mark("family", str(self.data.family_id))

    def action_mark_template(self) -> None:
        if self.loaded and self.data.template_id is not None:
            self.open_mark("template", str(self.data.template_id))

    def action_next_page(self) -> None:
        if self.loaded and self.offset + VIEW_PAGE < self.data.total_accounts:
            self.request(self.offset + VIEW_PAGE)

    def action_prev_page(self) -> None:
        if self.loaded and self.offset > 0:
            self.request(self.offset - VIEW_PAGE)
