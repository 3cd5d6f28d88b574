"""How long each TUI pivot takes: the engine call (data load) and the render once the data is in.

    python -m bench.tui_pivot --workspace WS            # an existing scanned workspace
    python -m bench.tui_pivot --build 20000 --out WS    # synth N exchanges, ingest and scan first
    python -m bench.tui_pivot --build 1000000 --out WS --standin   # 1M: stand-in vectors (see below)

The issue's target is a render of <= 150 ms after the data is loaded, at 1M exchanges. Render is timed
as `screen.show(data)` plus the next refresh, headless at 120x40; load is the engine method alone.
``--standin`` embeds with ``bench/pipeline.py``'s hashed-word encoder instead of MiniLM (embedding a
million prompts with MiniLM takes hours on 2 cores): the workspace, its tables and the screens are the
same size, so render times hold, but its families, rings and scores are not MiniLM's. The JSON says so.
Writes JSON to bench/results/tui_pivot.json (``--name``) and a table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

from engine import Engine


def _encoder(standin: bool):
    if not standin:
        return None
    from bench.pipeline import HashWordEncoder

    return HashWordEncoder()


def build(n: int, out: Path, standin: bool) -> Path:
    from engine.cli.demo import DEMO_SEED
    from synth import SynthConfig, write_synth

    result = write_synth(SynthConfig(exchanges=n, seed=DEMO_SEED), out.with_suffix(".jsonl.gz"))
    engine = Engine(out, encoder=_encoder(standin))
    engine.ingest([result.path])
    engine.scan()
    return out


async def measure(engine: Engine, repeats: int) -> list[dict]:
    from tui.app import CopyhoundApp
    from tui.screens.account import AccountScreen
    from tui.screens.overview import OverviewScreen
    from tui.screens.prompt import PromptScreen
    from tui.screens.ring import RingScreen

    ring = engine.rings(limit=1)
    account = engine.accounts(limit=1)
    fams = engine.families(limit=1)
    cases = [("overview", OverviewScreen, None, lambda: engine.analyst.overview(limit=20))]
    if fams:
        cases.append(("prompt", PromptScreen, fams[0].family_id,
                      lambda: engine.analyst.prompt_view(fams[0].family_id)))
    if account:
        cases.append(("account", AccountScreen, account[0].account_id,
                      lambda: engine.analyst.account_view(account[0].account_id)))
    if ring:
        cases.append(("ring", RingScreen, ring[0].ring_id, lambda: engine.analyst.ring_view(ring[0].ring_id)))
    rows = []
    app = CopyhoundApp(engine, warm_encoder=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        for name, screen_type, key, load in cases:
            loads, renders = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                data = load()
                loads.append(time.perf_counter() - t0)
                screen = app.screen if name == "overview" else screen_type(key)
                if name != "overview":
                    app.push_screen(screen)
                    await pilot.pause()
                    await app.workers.wait_for_complete()
                    await pilot.pause()
                t0 = time.perf_counter()
                screen.show(data)
                await pilot.pause()  # the refresh that paints it
                renders.append(time.perf_counter() - t0)
                if name != "overview":
                    app.pop_screen()
                    await pilot.pause()
            rows.append({"pivot": name, "load_ms_median": round(statistics.median(loads) * 1000, 1),
                         "render_ms_median": round(statistics.median(renders) * 1000, 1),
                         "render_ms_max": round(max(renders) * 1000, 1)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.tui_pivot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--build", type=int, help="synth this many exchanges into --out first")
    ap.add_argument("--out", type=Path, default=Path("bench-tui-ws"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--standin", action="store_true", help="hashed-word stand-in vectors (build and open)")
    ap.add_argument("--name", default="tui_pivot", help="results file bench/results/NAME.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    t0 = time.perf_counter()
    ws = build(args.build, args.out, args.standin) if args.build else args.workspace
    build_s = time.perf_counter() - t0
    if ws is None:
        ap.error("give --workspace or --build N")
    engine = Engine(ws, create=False, encoder=_encoder(args.standin))
    status = engine.status()
    rows = asyncio.run(measure(engine, args.repeats))
    from bench.common import envelope, write_results

    result = envelope("tui_pivot", exchanges=status.exchanges, accounts=status.accounts, prompts=status.prompts,
                      vectors="standin (hashed words)" if args.standin else "minilm",
                      build_s=round(build_s, 1) if args.build else None,
                      target_render_ms=150, pivots=rows)
    write_results(args.name, result)
    print(f"{status.exchanges:,} exchanges, {status.accounts:,} accounts")
    print(f"{'pivot':<10}{'load ms':>10}{'render ms':>12}{'max':>8}")
    for r in rows:
        print(f"{r['pivot']:<10}{r['load_ms_median']:>10}{r['render_ms_median']:>12}{r['render_ms_max']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
