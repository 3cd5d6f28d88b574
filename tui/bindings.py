"""Every key of the TUI, as data: one table per scope, shown in the footer."""

from __future__ import annotations

from textual.binding import Binding

APP = [
    Binding("o", "overview", "Overview"),
    Binding("slash", "search", "Search"),
    Binding("ctrl+p", "command_palette", "Palette", show=False),
    Binding("q", "quit", "Quit"),
]
BACK = [Binding("escape", "back", "Back")]
REFRESH = [Binding("r", "refresh", "Refresh")]
PAGING = [
    Binding("right_square_bracket", "next_page", "Next page"),
    Binding("left_square_bracket", "prev_page", "Prev page"),
]
TRIAGE = [
    Binding("m", "mark", "Mark"),
    Binding("e", "export", "Export"),
]
GOTO_RING = [Binding("g", "goto_ring", "Ring")]
QUEUE = [Binding("u", "app.queue", "Review queue")]
MARK_ITEMS = [
    Binding("m", "mark_family", "Mark family"),
    Binding("t", "mark_template", "Mark template"),
]
SEARCH = [
    Binding("escape", "back", "Back"),
    Binding("ctrl+down", "focus_results", "Results"),
]
MARK_DIALOG = [
    Binding("escape", "cancel", "Cancel"),
    Binding("ctrl+s", "save", "Save"),
]
