"""Pilot tests: the analyst's main path, triage, export and a busy workspace."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from textual.widgets import DataTable, Input, Static, TextArea

from tests.tui.conftest import settle, wait_for
from tui.app import BUSY_NOTICE
from tui.screens.account import AccountScreen
from tui.screens.mark import MarkDialog
from tui.screens.overview import OverviewScreen
from tui.screens.prompt import PromptScreen
from tui.screens.ring import RingScreen
from tui.screens.search import SearchScreen

pytestmark = pytest.mark.anyio


def _keys(table: DataTable) -> list[str]:
    return [row.value for row in table.rows]


async def _select(pilot, table: DataTable, key: str) -> None:
    await wait_for(pilot, lambda: key in _keys(table))
    table.focus()  # applied on a later tick (call_later): Enter before then goes to another widget
    row = _keys(table).index(key)
    table.move_cursor(row=row)
    await wait_for(pilot, lambda: table.has_focus and table.cursor_row == row)
    await pilot.press("enter")
    await settle(pilot)


@pytest.mark.slow
async def test_main_path_on_a_real_scanned_workspace(real_workspace):
    """Search a planted copy-ring prompt -> prompt -> account -> ring -> Escape back to search."""
    from engine import Engine
    from tui.app import CopyhoundApp

    ws, truth = real_workspace
    ring_truth = next(c for c in truth["campaigns"] if c["kind"] == "copy_ring")
    planted = set(ring_truth["accounts"])
    app = CopyhoundApp(Engine(ws))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        await pilot.press("slash")
        await settle(pilot)
        assert isinstance(app.screen, SearchScreen)
        app.screen.query_one(TextArea).insert(ring_truth["example_prompts"][0])
        matches = app.screen.query_one("#matches", DataTable)
        await wait_for(pilot, lambda: matches.row_count > 0, timeout=120)

        await pilot.press("ctrl+down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen.loaded)
        accounts = app.screen.query_one("#prompt-accounts", DataTable)
        listed = set(_keys(accounts))
        assert len(listed & planted) >= 3, (listed, planted)

        v = app.screen.data
        member = next(a.account_id for a in v.accounts if a.account_id in planted and a.ring_id is not None)
        await _select(pilot, accounts, member)
        await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen) and app.screen.loaded)
        assert app.screen.query_one("#signals", DataTable).row_count > 0
        assert member in str(app.screen.query_one("#account-head", Static).render())

        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, RingScreen) and app.screen.loaded)
        members = set(_keys(app.screen.query_one("#members", DataTable)))
        assert member in members and len(members & planted) >= 2
        assert "Ring" in str(app.screen.query_one("#crumbs", Static).render())

        await pilot.press("escape", "escape", "escape")
        await settle(pilot)
        assert isinstance(app.screen, SearchScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)


async def test_overview_lists_rings_and_pages_accounts(fixed_app_factory):
    app = fixed_app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded and app.screen.query_one("#accounts", DataTable).row_count)
        assert _keys(app.screen.query_one("#rings", DataTable)) == ["7"]
        assert _keys(app.screen.query_one("#accounts", DataTable))[0] == "acct-ring-01"
        await pilot.press("right_square_bracket")  # one page only: nothing changes, nothing breaks
        await settle(pilot)
        await _select(pilot, app.screen.query_one("#rings", DataTable), "7")
        await wait_for(pilot, lambda: isinstance(app.screen, RingScreen) and app.screen.loaded)
        assert app.screen.data.template_splits[0].per_member == (8, 8, 8, 8)


async def test_mark_an_account_shows_everywhere(fixed_app_factory, fixed_ws):
    app = fixed_app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        await _select(pilot, app.screen.query_one("#accounts", DataTable), "acct-ring-02")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen) and app.screen.loaded)
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, MarkDialog)
        await pilot.click("#label-confirmed")
        note = app.screen.query_one("#mark-note", Input)
        note.focus()
        note.value = "same six questions as ring 7"
        await wait_for(pilot, lambda: note.has_focus)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountScreen) and app.screen.loaded
                       and app.screen.data.mark is not None)
        assert app.screen.data.mark.label == "confirmed"
        assert "confirmed" in str(app.screen.query_one("#account-head", Static).render())
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, RingScreen) and app.screen.loaded)
        assert app.screen.data.mark_of("acct-ring-02").label == "confirmed"
        await pilot.press("escape", "escape")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen) and app.screen.loaded)
        table = app.screen.query_one("#accounts", DataTable)
        await wait_for(pilot, lambda: "confirmed" in [str(c) for c in table.get_row("acct-ring-02")])
    assert [m.label for m in fixed_engine_marks(fixed_ws)] == ["confirmed"]


def fixed_engine_marks(ws):
    from tests.fixtures.workspace import fixed_engine

    return fixed_engine(ws).analyst.marks()


async def test_export_a_ring_writes_an_evidence_bundle(fixed_app_factory, fixed_ws):
    app = fixed_app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        await _select(pilot, app.screen.query_one("#rings", DataTable), "7")
        await wait_for(pilot, lambda: isinstance(app.screen, RingScreen) and app.screen.loaded)
        await pilot.press("e")
        await wait_for(pilot, lambda: any("evidence written" in n for n in app.notices))
    bundles = [p for p in (fixed_ws / "exports").iterdir() if not p.name.startswith(".")]
    assert len(bundles) == 1 and bundles[0].name.startswith("ring-7-")
    assert sorted(f.name for f in bundles[0].iterdir()) == ["evidence.json", "exchanges.csv", "families.csv",
                                                           "signals.csv"]


async def test_busy_workspace_shows_a_notice_then_the_data(fixed_ws):
    """Another process holds the DuckDB lock while the TUI opens: it says so, retries, then shows data."""
    from tests.fixtures.workspace import fixed_engine
    from tui.app import CopyhoundApp

    engine = fixed_engine(fixed_ws, busy_timeout=0.5)  # opened (and migrated) before the lock is taken
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(engine.store.db_path)!r})
            print("locked", flush=True)
            sys.stdin.read()  # hold the lock until the test closes our stdin
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        app = CopyhoundApp(engine)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: BUSY_NOTICE in app.notices, timeout=30)
            assert not app.screen.loaded
            holder.stdin.close()
            holder.wait(timeout=30)
            await wait_for(pilot, lambda: app.screen.loaded, timeout=30)
            assert "81 exchanges" in str(app.screen.query_one("#figures", Static).render())
    finally:
        if holder.poll() is None:
            holder.kill()
