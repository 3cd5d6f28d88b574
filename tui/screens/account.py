"""Account view: score and signals with their evidence, prompts by family/template, timeline, linked accounts."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from engine import AccountView
from tui import bindings
from tui.messages import (
    VIEW_PAGE,
    AccountSelected,
    AccountViewLoaded,
    AccountViewRequested,
    ExportRequested,
    PromptSelected,
    RingSelected,
)
from tui.screens.base import PivotScreen, fill, score, short, when
from tui.widgets.activity import ActivityChart


class AccountScreen(PivotScreen):
    BINDINGS = PivotScreen.BINDINGS + bindings.GOTO_RING + bindings.TRIAGE + bindings.PAGING

    def __init__(self, account_id: str) -> None:
        super().__init__()
        self.account_id = str(account_id)

    @property
    def crumb(self) -> str:
        return f"Account {short(self.account_id, 20)}"

    def data_request(self) -> AccountViewRequested:
        return AccountViewRequested(self, self.account_id, self.offset, VIEW_PAGE)

    def on_account_view_loaded(self, message: AccountViewLoaded) -> None:
        self.loaded_with(message.view)

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="body"):
            yield Static(id="account-head", classes="head")
            yield Static("Signals (why it scores)", classes="section")
            yield DataTable(id="signals", cursor_type="row", zebra_stripes=True)
            yield Static("Activity", classes="section")
            yield ActivityChart(id="timeline")
            yield Static("Prompts by family and template", id="groups-title", classes="section")
            yield DataTable(id="groups", cursor_type="row", zebra_stripes=True)
            yield Static("Linked accounts (shared rare content or infrastructure)", classes="section")
            yield DataTable(id="links", cursor_type="row", zebra_stripes=True)

    def setup(self) -> None:
        self.query_one("#signals", DataTable).add_columns("signal", "score", "value", "background", "detail",
                                                          "evidence")
        self.query_one("#groups", DataTable).add_columns("family", "template", "prompts", "exch", "accts in family",
                                                         "first", "last", "example")
        self.query_one("#links", DataTable).add_columns("account", "weight", "shared", "shared families", "score",
                                                        "ring", "mark", "shared infrastructure")

    def show(self, v: AccountView) -> None:
        self.data = v
        s = v.score
        head = (f"[b]{v.account_id}[/] · score [b]{score(s.score) if s else 'n/a'}[/]"
                f" · ring {s.ring_id if s and s.ring_id is not None else '—'}"
                f" · {v.n_exchanges:,} exchanges · {v.n_prompts:,} prompts · {when(v.first_seen)} – {when(v.last_seen)}")
        if v.mark:
            head += f"\nmarked [b]{v.mark.label}[/]" + (f": {short(v.mark.note, 80)}" if v.mark.note else "")
        self.query_one("#account-head", Static).update(head)
        fill(self.query_one("#signals", DataTable), (
            (i, (sig.name, f"{sig.score:.2f}", f"{sig.value:.3g}", f"{sig.background:.3g}", short(sig.detail, 50),
                 short(_examples(sig.examples), 40)))
            for i, sig in enumerate(v.signals)))
        self.query_one("#timeline", ActivityChart).show(v.timeline)
        self.query_one("#groups-title", Static).update(
            f"Prompts by family and template ({v.offset + 1 if v.groups else 0}–{v.offset + len(v.groups)} "
            f"of {v.total_groups})")
        fill(self.query_one("#groups", DataTable), (
            (i, ("" if g.family_id is None else str(g.family_id), "" if g.template_id is None else str(g.template_id),
                 str(g.n_prompts), str(g.n_exchanges), str(g.family_accounts) if g.family_id is not None else "",
                 when(g.first_seen), when(g.last_seen), short(g.example, 48)))
            for i, g in enumerate(v.groups)))
        fill(self.query_one("#links", DataTable), (
            (ln.account_id, (short(ln.account_id, 24), f"{ln.weight:.2f}", str(ln.n_shared),
                             short(", ".join(map(str, ln.shared_families)), 30), score(ln.score),
                             "" if ln.ring_id is None else str(ln.ring_id), ln.mark or "",
                             short("; ".join(ln.shared_infrastructure), 40)))
            for ln in v.links))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        table = event.data_table.id
        if table == "groups" and self.loaded:
            self.post_message(PromptSelected(self.data.groups[int(event.row_key.value)].example_prompt_id))
        elif table == "links":
            self.post_message(AccountSelected(event.row_key.value))

    def action_goto_ring(self) -> None:
        if self.loaded and self.data.score and self.data.score.ring_id is not None:
            self.post_message(RingSelected(self.data.score.ring_id))
        else:
            self.notify("this account is in no ring", timeout=3)

    def action_mark(self) -> None:
        self.open_mark("account", self.account_id)

    def action_export(self) -> None:
        self.post_message(ExportRequested(self, "account", self.account_id))

    def action_next_page(self) -> None:
        if self.loaded and self.offset + VIEW_PAGE < self.data.total_groups:
            self.request(self.offset + VIEW_PAGE)

    def action_prev_page(self) -> None:
        if self.loaded and self.offset > 0:
            self.request(self.offset - VIEW_PAGE)


def _examples(examples) -> str:
    return "; ".join(json.dumps(e, default=str, ensure_ascii=False) if not isinstance(e, str) else e
                     for e in examples[:2])
