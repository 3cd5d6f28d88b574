"""`copyhound demo`: synthetic traffic with planted campaigns, through the whole pipeline, explained."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TextIO

from engine.cli.output import write_rows
from engine.config import FLAG_SCORE
from engine.progress import ProgressFn, no_progress

log = logging.getLogger(__name__)


# Seed of the demo's traffic; bench/detect_eval.py's `demo` scenario regenerates exactly this traffic.
DEMO_SEED = 7


def run_demo(workspace: Path, *, exchanges: int = 20_000, out: TextIO, progress: ProgressFn = no_progress,
             encoder: str | None = None) -> dict:
    """Generate (once), ingest, embed, scan; print a summary and one who-else of a planted ring."""
    from engine import Engine
    from engine.config import EngineConfig
    from engine.store.workspace import private_files
    from synth import SynthConfig, write_synth

    started = time.monotonic()
    private_files()  # the demo traffic is written into the workspace before the Store opens it
    workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
    traffic = workspace / "demo-traffic.jsonl.gz"
    truth_path = workspace / "demo-traffic.truth.json"
    if not traffic.exists() or not truth_path.exists():
        log.info("generating %d demo exchanges into %s", exchanges, traffic)
        synth = write_synth(SynthConfig(exchanges=exchanges, seed=DEMO_SEED), traffic,
                            progress=lambda done, total: progress("synth", done, total))
        truth_path = synth.truth_path
    truth = json.loads(Path(truth_path).read_text())
    engine = Engine(workspace, config=EngineConfig(encoder=encoder), create=True)  # the demo makes its own
    engine.ingest([traffic], progress=progress)
    scan = engine.scan(progress=progress)
    status = engine.status()

    out.write(f"\ncopyhound demo: workspace {workspace}\n")
    out.write(f"  {status.exchanges:,} exchanges, {status.accounts:,} accounts, {status.prompts:,} distinct prompts, "
              f"{status.indexed:,} vectors indexed ({status.index_factory})\n")
    out.write(f"  scan: {scan.edges:,} near-copy edges, {scan.families:,} families shared by 2+ prompts, "
              f"{scan.templates} templates, {scan.rings} rings, {scan.flagged_accounts} accounts scored >= {FLAG_SCORE}\n\n")

    account_truth: dict[str, str | None] = truth.get("accounts", {})
    campaigns = {c["campaign_id"]: c for c in truth.get("campaigns", [])}
    rings = engine.rings(limit=8)
    rows = []
    for ring in rings:
        labels = [account_truth.get(a) for a in ring.accounts]
        # Sorted first so a tie names the same campaign on every run (a set's order follows the hash seed).
        planted = max(sorted(set(labels), key=str), key=labels.count) if labels else None
        purity = labels.count(planted) / len(labels) if labels and planted else 0.0
        kind = campaigns.get(planted, {}).get("kind", "organic") if planted else "organic"
        rows.append({"ring_id": ring.ring_id, "score": ring.score, "accounts": len(ring.accounts),
                     "planted_campaign": f"{planted} ({kind})" if planted else "none (organic)",
                     "purity": round(purity, 2), "summary": ring.summary})
    write_rows(rows, ("ring_id", "score", "accounts", "planted_campaign", "purity", "summary"), "table", out=out,
               title="top rings (ground truth from the generator shown beside them)")

    # Show the planted copy-ring prompt that the most ring accounts sent (one batched who-else call).
    candidates = [(c, q) for c in campaigns.values() if c["kind"] == "copy_ring" for q in c["example_prompts"]]
    recalled = 0
    if candidates:
        result = engine.who_else([q for _, q in candidates])
        best = max(range(len(candidates)), key=lambda i: len(
            {r.account_id for r in result.for_query(i)} & set(candidates[i][0]["accounts"])))
        ring_campaign, query = candidates[best]
        members = set(ring_campaign["accounts"])
        hits = result.for_query(best)
        rows = [{"account_id": r.account_id, "n_matches": r.n_matches, "max_similarity": r.max_similarity,
                 "exact": r.exact, "planted": "yes" if r.account_id in members else "",
                 "example": " ".join(r.example.split())[:70]} for r in hits]
        recalled = len({r.account_id for r in hits} & members)
        out.write(f"\nwho-else for a prompt of planted ring {ring_campaign['campaign_id']}:\n  {query[:110]!r}\n")
        write_rows(rows, ("account_id", "n_matches", "max_similarity", "exact", "planted", "example"), "table",
                   out=out)
        out.write(f"  {len(hits)} accounts sent a near-copy; {recalled} of them belong to the planted ring "
                  f"of {len(members)} accounts.\n")
    out.write(f"\nNext: `copyhound accounts -w {workspace}`, `copyhound rings -w {workspace}`, "
              f"`copyhound tui -w {workspace}`  ({time.monotonic() - started:.0f} s)\n")
    return {"scan": scan.to_dict(), "rings": rows, "recalled": recalled}
