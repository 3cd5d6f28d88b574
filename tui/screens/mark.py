"""The mark dialog: a label (suspicious, benign, confirmed) and a note for an account or ring."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, RadioButton, RadioSet, Static

from engine import MARK_LABELS
from tui import bindings


class MarkDialog(ModalScreen[tuple[str, str] | None]):
    """Dismisses with (label, note), or None when cancelled."""

    BINDINGS = bindings.MARK_DIALOG

    def __init__(self, target_kind: str, target_id: str) -> None:
        super().__init__()
        self.target_kind = target_kind
        self.target_id = target_id

    def compose(self) -> ComposeResult:
        with Vertical(id="mark-box"):
            yield Static(f"Mark {self.target_kind} [b]{self.target_id}[/]", classes="section")
            with RadioSet(id="mark-label"):
                for i, label in enumerate(MARK_LABELS):
                    yield RadioButton(label, value=i == 0, id=f"label-{label}")
            yield Input(placeholder="note (Enter or ctrl+s saves, Escape cancels)", id="mark-note")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#mark-note", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_save()

    def action_save(self) -> None:
        index = self.query_one(RadioSet).pressed_index
        self.dismiss((MARK_LABELS[max(index, 0)], self.query_one("#mark-note", Input).value))

    def action_cancel(self) -> None:
        self.dismiss(None)
