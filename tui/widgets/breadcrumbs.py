"""The pivot path: one crumb per screen on the stack (Escape walks back along it)."""

from __future__ import annotations

from textual.widgets import Static


class Breadcrumbs(Static):
    def show(self, crumbs: list[str]) -> None:
        self.update(" › ".join(["copyhound", *crumbs]))
