"""Activity over time as sparkline rows sharing one time axis and one scale.

One row per series (an account, "all traffic"): bursts at the same column are synchronised activity.
Rows share the scale of the tallest bucket unless `per_row_scale` is set (flagged traffic against all
traffic is easier to read with each row on its own scale).
"""

from __future__ import annotations

from datetime import timedelta

from rich.text import Text
from textual.widgets import Static

BARS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: tuple[int, ...], top: int) -> str:
    if top <= 0:
        return BARS[0] * len(counts)
    return "".join(BARS[0] if c == 0 else BARS[max(1, round(c / top * (len(BARS) - 1)))] for c in counts)


class ActivityChart(Static):
    """Renders an `engine.Timeline` (any object with start, bucket_seconds, labels, counts)."""

    def __init__(self, *, per_row_scale: bool = False, max_rows: int = 12, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.per_row_scale = per_row_scale
        self.max_rows = max_rows

    def show(self, timeline) -> None:
        text = Text()
        if timeline is None or not timeline.counts:
            self.update("no activity")
            return
        label_w = min(max(len(lb) for lb in timeline.labels), 22)
        top_all = max((max(c) for c in timeline.counts), default=0)
        for label, counts in list(zip(timeline.labels, timeline.counts, strict=True))[: self.max_rows]:
            top = max(counts) if self.per_row_scale else top_all
            text.append(f"{label[:label_w]:<{label_w}} ", style="bold")
            text.append(sparkline(counts, top), style="cyan")
            text.append(f" {sum(counts):>6}\n", style="dim")
        hidden = len(timeline.labels) - self.max_rows
        if hidden > 0:
            text.append(f"{'':<{label_w}} … {hidden} more\n", style="dim")
        if timeline.start is not None:
            end = timeline.start + timedelta(seconds=timeline.bucket_seconds * timeline.n_buckets)
            left = timeline.start.strftime("%Y-%m-%d %H:%M")
            right = end.strftime("%Y-%m-%d %H:%M")
            gap = max(timeline.n_buckets - len(left) - len(right), 1)
            text.append(f"{'':<{label_w}} {left}{' ' * gap}{right}", style="dim")
            text.append(f"  ({_span(timeline.bucket_seconds)}/bucket)", style="dim")
        self.update(text)


def _span(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"
