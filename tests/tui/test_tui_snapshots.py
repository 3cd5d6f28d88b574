"""Snapshots of each screen at 120x40 on the fixed workspace (fixed data, no clocks, no spinners).

Update after an intended change with `pytest tests/tui --snapshot-update` and review the SVG diff.
"""

from __future__ import annotations

from textual.widgets import DataTable, Static, TextArea

from tests.fixtures.workspace import QUESTIONS
from tests.tui.conftest import settle, wait_for
from tui.screens.account import AccountScreen
from tui.screens.overview import OverviewScreen
from tui.screens.prompt import PromptScreen
from tui.screens.queue import QueueScreen
from tui.screens.ring import RingScreen

SIZE = (120, 40)


async def _loaded(pilot, screen_type=None) -> None:
    await wait_for(pilot, lambda: (screen_type is None or isinstance(pilot.app.screen, screen_type))
                   and getattr(pilot.app.screen, "loaded", True))
    await settle(pilot)


async def _to_account(pilot) -> None:
    await _loaded(pilot, OverviewScreen)
    table = pilot.app.screen.query_one("#accounts", DataTable)
    await wait_for(pilot, lambda: table.row_count > 0)
    table.focus()
    await wait_for(pilot, lambda: table.has_focus)
    await pilot.press("enter")
    await _loaded(pilot, AccountScreen)


def test_overview(snap_compare, fixed_app_factory):
    async def run_before(pilot) -> None:
        await _loaded(pilot, OverviewScreen)
        screen = pilot.app.screen
        # The overview fills from two workers (figures + rings, a page of accounts); under a loaded
        # CI machine one can land after the other has settled, so wait for what each one draws.
        await wait_for(pilot, lambda: screen.query_one("#accounts", DataTable).row_count > 0
                       and screen.query_one("#rings", DataTable).row_count > 0
                       and " of " in str(screen.query_one("#accounts-title", Static).render()))
        await settle(pilot)
        assert not pilot.app.notices, pilot.app.notices

    assert snap_compare(fixed_app_factory(), terminal_size=SIZE, run_before=run_before)


def test_search(snap_compare, fixed_app_factory):
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        await pilot.press("slash")
        await settle(pilot)
        area = pilot.app.screen.query_one(TextArea)
        area.cursor_blink = False  # a blinking cursor is the one clock left on screen
        area.insert(QUESTIONS[1])
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#matches", DataTable).row_count > 0)
        await settle(pilot)

    assert snap_compare(fixed_app_factory(), terminal_size=SIZE, run_before=run_before)


def test_prompt_view(snap_compare, fixed_app_factory):
    async def run_before(pilot) -> None:
        await _to_account(pilot)
        account = pilot.app.screen
        groups = account.query_one("#groups", DataTable)
        groups.focus()  # Textual applies focus on a later tick (call_later): wait for it, or Enter goes elsewhere
        groups.move_cursor(row=2)  # family 2: the question an organic account also asked
        await wait_for(pilot, lambda: groups.has_focus and groups.cursor_row == 2)
        expected = account.data.groups[2].example_prompt_id
        await pilot.press("enter")
        await _loaded(pilot, PromptScreen)
        screen = pilot.app.screen
        assert screen.prompt_id == expected, (screen.prompt_id, expected)
        # The new screen focuses its table on a later tick too; the cursor row is drawn differently until then.
        await wait_for(pilot, lambda: screen.query_one("#prompt-accounts", DataTable).has_focus)
        await settle(pilot)
        assert not pilot.app.notices, pilot.app.notices

    assert snap_compare(fixed_app_factory(), terminal_size=SIZE, run_before=run_before)


def test_account_view(snap_compare, fixed_app_factory):
    assert snap_compare(fixed_app_factory(), terminal_size=SIZE, run_before=_to_account)


def test_ring_view(snap_compare, fixed_app_factory):
    async def run_before(pilot) -> None:
        await _to_account(pilot)
        await pilot.press("g")
        await _loaded(pilot, RingScreen)

    assert snap_compare(fixed_app_factory(), terminal_size=SIZE, run_before=run_before)


def test_mark_dialog(snap_compare, fixed_app_factory):
    async def run_before(pilot) -> None:
        await _to_account(pilot)
        await pilot.press("m")
        await settle(pilot)

    assert snap_compare(fixed_app_factory(), terminal_size=SIZE, run_before=run_before)



def test_review_queue(snap_compare, fixed_app_factory):
    async def run_before(pilot) -> None:
        await _loaded(pilot, OverviewScreen)
        await pilot.press("u")
        await _loaded(pilot, QueueScreen)
        table = pilot.app.screen.query_one("#queue", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0)
        await settle(pilot)
        assert not pilot.app.notices, pilot.app.notices

    assert snap_compare(fixed_app_factory(), terminal_size=SIZE, run_before=run_before)
