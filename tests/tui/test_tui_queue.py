"""Pilot tests of the review queue and of marking a prompt's family or template, on the fixed workspace."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from tests.fixtures.workspace import ORGANIC, RING, SENTENCES, TEMPLATE, fixed_engine
from tests.tui.conftest import settle, wait_for
from tui.screens.mark import MarkDialog
from tui.screens.overview import OverviewScreen
from tui.screens.prompt import PromptScreen
from tui.screens.queue import QueueScreen

pytestmark = pytest.mark.anyio


def _keys(table: DataTable) -> list[str]:
    return [row.value for row in table.rows]


async def _label(pilot, label: str) -> None:
    """In the open mark dialog: pick `label` and save."""
    await settle(pilot)
    assert isinstance(pilot.app.screen, MarkDialog)
    await pilot.click(f"#label-{label}")
    await pilot.press("ctrl+s")
    await settle(pilot)


async def test_the_queue_puts_unreviewed_likely_accounts_first_and_marks_move_them_down(fixed_app_factory, fixed_ws,
                                                                                         monkeypatch):
    monkeypatch.setenv("COPYHOUND_ANALYST", "ana")
    app = fixed_app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen) and app.screen.loaded)
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.loaded)
        table = app.screen.query_one("#queue", DataTable)
        assert _keys(table)[:5] == [*RING, ORGANIC[7]]
        assert "of 12" in str(app.screen.query_one("#queue-title", Static).render())

        table.focus()
        await wait_for(pilot, lambda: table.has_focus and table.cursor_row == 0)
        await pilot.press("m")
        await _label(pilot, "confirmed")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.loaded
                       and _keys(table)[0] == RING[1])
        # Reviewed now: last of the queue, with its label.
        assert _keys(table)[-1] == RING[0]
        assert "confirmed" in [str(c) for c in table.get_row(RING[0])]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen))
    (mark,) = fixed_engine(fixed_ws).analyst.marks()
    assert (mark.target_id, mark.label, mark.author) == (RING[0], "confirmed", "ana")


async def test_a_prompt_s_template_and_family_are_marked_from_the_prompt_view(fixed_app_factory, fixed_ws):
    app = fixed_app_factory()
    prompt_id = fixed_engine(fixed_ws).nearest_prompts(TEMPLATE.format(lang="French", s=SENTENCES[0]), k=1)[0].prompt_id
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        app.push_screen(PromptScreen(prompt_id))
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen.loaded)
        family = app.screen.data.family_id
        await pilot.press("t")
        await settle(pilot)
        assert "template" in str(app.screen.query_one(".section", Static).render())
        await _label(pilot, "benign")
        await wait_for(pilot, lambda: any("marked template 1 benign" in n for n in app.notices))
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen.loaded)
        await pilot.press("m")
        await _label(pilot, "confirmed")
        await wait_for(pilot, lambda: any(f"marked family {family} confirmed" in n for n in app.notices))
    marks = {(m.target_kind, m.target_id, m.label) for m in fixed_engine(fixed_ws).analyst.marks()}
    assert marks == {("template", "1", "benign"), ("family", str(family), "confirmed")}
