"""Regenerate docs/ring-view.svg: the ring view of the top ring of a scanned workspace, at 120x40.

    python docs/make_ring_view.py WORKSPACE
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def shoot(workspace: str, out: Path) -> None:
    from engine import Engine
    from tui.app import CopyhoundApp
    from tui.messages import RingSelected
    from tui.screens.ring import RingScreen

    engine = Engine(workspace, create=False)
    ring = engine.rings(limit=1)[0]
    app = CopyhoundApp(engine, warm_encoder=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        app.post_message(RingSelected(ring.ring_id))
        while not (isinstance(app.screen, RingScreen) and app.screen.loaded):
            await pilot.pause(0.05)
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.save_screenshot(filename=out.name, path=str(out.parent))


if __name__ == "__main__":
    asyncio.run(shoot(sys.argv[1], Path(__file__).parent / "ring-view.svg"))
