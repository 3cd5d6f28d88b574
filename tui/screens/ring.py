"""Ring view: members, shared families and templates, how members split a template, side-by-side activity."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from engine import Mark, RingView
from tui import bindings
from tui.messages import AccountSelected, ExportRequested, PromptSelected, RingViewLoaded, RingViewRequested
from tui.screens.account import _examples
from tui.screens.base import PivotScreen, fill, score, short
from tui.widgets.activity import ActivityChart


class RingScreen(PivotScreen):
    BINDINGS = PivotScreen.BINDINGS + bindings.TRIAGE

    def __init__(self, ring_id: int) -> None:
        super().__init__()
        self.ring_id = int(ring_id)

    @property
    def crumb(self) -> str:
        return f"Ring {self.ring_id}"

    def data_request(self) -> RingViewRequested:
        return RingViewRequested(self, self.ring_id)

    def on_ring_view_loaded(self, message: RingViewLoaded) -> None:
        self.loaded_with(message.view)

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="body"):
            yield Static(id="ring-head", classes="head")
            yield Static("Members", classes="section")
            yield DataTable(id="members", cursor_type="row", zebra_stripes=True)
            yield Static("Activity side by side (same time buckets, same scale)", classes="section")
            yield ActivityChart(id="timeline")
            yield Static("How members split shared templates (distinct prompts each sent)", classes="section")
            yield DataTable(id="splits", cursor_type="row", zebra_stripes=True)
            yield Static("Shared families", classes="section")
            yield DataTable(id="families", cursor_type="row", zebra_stripes=True)
            yield Static("Evidence", classes="section")
            yield DataTable(id="signals", cursor_type="row", zebra_stripes=True)

    def setup(self) -> None:
        self.query_one("#members", DataTable).add_columns("account", "score", "exch", "top signal", "mark")
        self.query_one("#families", DataTable).add_columns("family", "members", "prompts", "exch", "centre prompt")
        self.query_one("#signals", DataTable).add_columns("signal", "score", "value", "background", "detail",
                                                          "evidence")

    def show(self, v: RingView) -> None:
        self.data = v
        r = v.ring
        head = (f"[b]Ring {r.ring_id}[/] · score [b]{score(r.score)}[/] · {len(v.members)} members · "
                f"{r.n_exchanges:,} exchanges\n{r.summary}")
        if v.mark:
            head += f"\nmarked [b]{v.mark.label}[/]" + (f": {short(v.mark.note, 80)}" if v.mark.note else "")
        self.query_one("#ring-head", Static).update(head)
        fill(self.query_one("#members", DataTable), (
            (m.account_id, (short(m.account_id, 24), score(m.score), f"{m.n_exchanges:,}", m.top_signal,
                            _label(v.mark_of(m.account_id))))
            for m in v.members))
        self.query_one("#timeline", ActivityChart).show(v.timeline)
        splits = self.query_one("#splits", DataTable)
        splits.clear(columns=True)
        splits.add_columns("template", "coverage", "overlap", *[f"m{i + 1}" for i in range(len(v.members))])
        fill(splits, (
            (s.template_id, (short(f"{s.template_id}: {s.pattern}", 50),
                             f"{s.distinct_prompts}/{s.template_prompts}", f"{s.overlap:.2f}",
                             *[str(c) for c in s.per_member]))
            for s in v.template_splits))
        fill(self.query_one("#families", DataTable), (
            (f.family_id, (str(f.family_id), str(f.n_members), str(f.n_prompts), str(f.n_exchanges),
                           short(f.center, 70)))
            for f in v.shared_families))
        fill(self.query_one("#signals", DataTable), (
            (i, (sig.name, f"{sig.score:.2f}", f"{sig.value:.3g}", f"{sig.background:.3g}", short(sig.detail, 50),
                 short(_examples(sig.examples), 30)))
            for i, sig in enumerate(r.signals)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        table = event.data_table.id
        if table == "members":
            self.post_message(AccountSelected(event.row_key.value))
        elif table == "families":
            self.post_message(PromptSelected(int(event.row_key.value)))

    def action_mark(self) -> None:
        self.open_mark("ring", str(self.ring_id))

    def action_export(self) -> None:
        self.post_message(ExportRequested(self, "ring", str(self.ring_id)))


def _label(mark: Mark | None) -> str:
    return mark.label if mark else ""
