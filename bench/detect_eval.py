"""Does detection find planted campaigns, and leave organic look-alikes alone? Against two baselines.

Usage: ``python -m bench.detect_eval [--scenarios synth corpora] [--workdir /tmp/detect_eval]
[--max-accounts 20] [--fresh] [--out detect_eval]``

For each labelled scenario (``bench/scenarios.py``: ``synth`` = ``copyhound synth`` traffic, ``corpora``
= real corpora with planted campaigns) it ingests the traffic into ``<workdir>/<scenario>/ws`` and
runs ``Engine.scan(force=True)`` (a workspace already built is reused: re-ingest is a no-op and
nothing is re-embedded, but the self-join, families, templates and scores are recomputed with the
current code; ``--fresh`` rebuilds the workspace and times the whole scan), then scores every
account three ways:

* ``copyhound``: ``Engine.accounts()`` scores and ``Engine.rings()``.
* ``exact``: accounts linked when they send the same exact normalised prompt (``prompts.fingerprint``)
  that at most ``--max-accounts`` accounts send. Score = sum over such prompts of ``ln(N / k)``
  (``N`` accounts in all, ``k`` accounts sending it): rarer shared prompts weigh more.
* ``minhash``: datasketch MinHash (128 permutations) of word 3-shingles of the normalised prompt,
  LSH at Jaccard 0.5; near-duplicate prompts are joined into families (connected components), and a
  family plays the role of the exact prompt above (same ``--max-accounts`` cap, same score).

Baseline rings: Louvain communities (networkx, seed 0) of >= 3 accounts over pairs that share >= 2
rare items (one shared item is what two strangers asking the same thing look like).

Metrics, per campaign (truth file) and pooled per campaign kind:

* ``recall_at_1pct_fpr``: the account score is cut at the 99th percentile of organic accounts' scores
  (``numpy`` "higher" method, so the cut is an actual organic score and the organic FPR is <= 1 %);
  recall = share of the campaign's accounts scoring strictly above it. ``fpr`` is the organic share
  above the same cut (it can be well under 1 % when many organic accounts tie at the cut).
* ``recall_at_01pct_fpr``: the same at the 99.9th percentile of organic scores (0.1 % FPR), reported
  everywhere the 1 % figure is (``cut_at_01pct_fpr``, ``organic_fpr_at_01pct_cut``).
* ``auc``: ROC AUC of campaign accounts vs organic accounts (ties count half).
* ``ring_capture``: the largest share of the campaign's accounts in one ring; ``ring_purity``: the share
  of that ring's accounts that belong to the campaign; ``n_rings``: rings holding any of its accounts.
  Per kind, ``campaigns_ringed``: the share of its campaigns with >= 80 % of their accounts in one ring
  of purity >= 0.9.
* ``shapes`` (when the truth has ``account_shapes``, i.e. ``synth --profile season``): recall at both
  cuts per campaign-account shape (diluted, thin, heavy, regular).

Hard negatives: rings whose members are mostly (>= 50 %) senders of one viral prompt ("viral rings",
target: none), and any ring that is mostly organic; the single-account template apps and the heavy
organic users (top 1 % of organic accounts by volume, apps excluded): their scores, whether they are
above the 1 %-FPR cut (and the 0.1 % one), flagged by copyhound (score >= 0.5), or in a ring; with a
season truth also the bank bystanders (organic users who pasted public-bank questions).
``organic_rings_per_million_accounts`` counts the organic rings per million accounts of the dataset.
For copyhound, missed campaign accounts and the top organic accounts are listed with their signals
(``diagnosis``).

Writes ``bench/results/<out>.json`` and prints one table per scenario.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from bench import scenarios
from bench.common import envelope, table, write_results
from engine import Engine
from engine.config import EngineConfig
from engine.detect.scoring import FLAG_SCORE  # copyhound flags an account at this score

log = logging.getLogger("bench.detect_eval")

LSH_THRESHOLD = 0.5
NUM_PERM = 128
RING_MIN_SHARED = 2
METHODS = ("copyhound", "exact", "minhash")
# A campaign counts as ringed when one ring holds >= 80 % of its accounts at >= 90 % purity.
RINGED_CAPTURE, RINGED_PURITY = 0.8, 0.9
SHAPES = ("diluted", "thin", "heavy", "regular")  # account shapes in a season truth (synth.season)


# ---------------------------------------------------------------------------------- baselines
def _load_exchanges(engine: Engine) -> tuple[list[str], np.ndarray, np.ndarray, dict[int, str]]:
    """Every (account, prompt) pair once: accounts, prompt ids, fingerprints; and prompt id -> normalised."""
    with engine.store.connect() as con:
        rows = con.execute(
            """SELECT DISTINCT e.account_id, e.prompt_id, p.fingerprint FROM exchanges e JOIN prompts p
               USING (prompt_id) ORDER BY e.account_id, e.prompt_id"""
        ).fetchall()
        texts = dict(con.execute("SELECT prompt_id, normalized FROM prompts").fetchall())
    return ([r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=np.int64), texts)


def _shingles(text: str) -> set[bytes]:
    words = text.split()
    if len(words) < 3:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + 3]).encode() for i in range(len(words) - 2)}


def minhash_families(texts: dict[int, str]) -> dict[int, int]:
    """Prompt id -> family id: connected components of MinHash-LSH near-duplicate pairs (Jaccard ~0.5)."""
    from datasketch import MinHash, MinHashLSH

    ids = sorted(texts)
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    sigs = {}
    for pid in ids:
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch(list(_shingles(texts[pid])))
        sigs[pid] = m
        lsh.insert(pid, m)
    parent = {pid: pid for pid in ids}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for pid in ids:
        for other in lsh.query(sigs[pid]):
            ra, rb = find(pid), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {pid: find(pid) for pid in ids}


def baseline(accounts: list[str], items: np.ndarray, all_accounts: list[str], max_accounts: int,
             seed: int = 0) -> tuple[dict[str, float], list[set[str]], dict]:
    """Scores and rings from shared rare items (exact fingerprints or MinHash families).

    ``accounts[i]`` sent item ``items[i]`` (one row per distinct (account, prompt), so an item repeated
    by one account counts once per distinct prompt). Items sent by 2..``max_accounts`` accounts count.
    """
    import networkx as nx

    members: dict[int, set[str]] = defaultdict(set)
    for a, it in zip(accounts, items.tolist(), strict=True):
        members[it].add(a)
    n = len(all_accounts)
    score: dict[str, float] = dict.fromkeys(all_accounts, 0.0)
    shared: Counter = Counter()
    n_items = 0
    for accs in members.values():
        k = len(accs)
        if not 2 <= k <= max_accounts:
            continue
        n_items += 1
        w = math.log(n / k)
        srt = sorted(accs)
        for a in srt:
            score[a] += w
        for i, a in enumerate(srt):
            for b in srt[i + 1:]:
                shared[(a, b)] += 1
    g = nx.Graph()
    g.add_edges_from((a, b, {"weight": c}) for (a, b), c in shared.items() if c >= RING_MIN_SHARED)
    rings = [set(c) for c in nx.community.louvain_communities(g, weight="weight", seed=seed) if len(c) >= 3] \
        if g.number_of_edges() else []
    return score, rings, {"rare_items": n_items, "linked_pairs": len(shared),
                          "ring_edges": g.number_of_edges(), "rings": len(rings)}


# ---------------------------------------------------------------------------------- metrics
def auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """P(pos > neg) + 0.5 P(pos == neg)."""
    if len(pos) == 0 or len(neg) == 0:
        return None
    neg = np.sort(neg)
    lo = np.searchsorted(neg, pos, side="left")
    hi = np.searchsorted(neg, pos, side="right")
    return float(((lo + 0.5 * (hi - lo)) / len(neg)).mean())


def ring_capture(members: set[str], rings: list[set[str]]) -> dict:
    best, best_n = None, 0
    touched = 0
    for r in rings:
        k = len(members & r)
        touched += k > 0
        if k > best_n:
            best, best_n = r, k
    return {"ring_capture": round(best_n / len(members), 4) if members else None,
            "ring_purity": round(best_n / len(best), 4) if best else None,
            "ring_size": len(best) if best else 0, "n_rings": touched}


def _recall(s: np.ndarray, cut: float) -> float | None:
    return round(float((s > cut).mean()), 4) if len(s) else None


def evaluate(score: dict[str, float], rings: list[set[str]], truth: dict, volume: dict[str, int]) -> dict:
    """All metrics for one method; see the module docstring."""
    labels: dict[str, str | None] = truth["accounts"]
    org = [a for a, c in labels.items() if c is None]
    org_s = np.array([score.get(a, 0.0) for a in org])
    cut = float(np.percentile(org_s, 99, method="higher"))
    cut01 = float(np.percentile(org_s, 99.9, method="higher"))
    fpr = float((org_s > cut).mean())
    out: dict = {"cut_at_1pct_fpr": round(cut, 6), "organic_fpr": round(fpr, 5),
                 "cut_at_01pct_fpr": round(cut01, 6), "organic_fpr_at_01pct_cut": round(float((org_s > cut01).mean()), 5),
                 "campaigns": {}, "kinds": {}}
    by_kind: dict[str, list[str]] = defaultdict(list)
    for c in truth["campaigns"]:
        accs = list(c["accounts"])
        s = np.array([score.get(a, 0.0) for a in accs])
        by_kind[c["kind"]] += accs
        out["campaigns"][c["campaign_id"]] = {
            "kind": c["kind"], "accounts": len(accs),
            "recall_at_1pct_fpr": _recall(s, cut), "recall_at_01pct_fpr": _recall(s, cut01),
            "auc": round(auc(s, org_s), 4),
            **ring_capture(set(accs), rings),
        }
    for kind, accs in by_kind.items():
        s = np.array([score.get(a, 0.0) for a in accs])
        insts = [v for v in out["campaigns"].values() if v["kind"] == kind]
        out["kinds"][kind] = {
            "accounts": len(accs), "instances": len(insts),
            "recall_at_1pct_fpr": _recall(s, cut), "recall_at_01pct_fpr": _recall(s, cut01),
            "min_instance_recall": min(v["recall_at_1pct_fpr"] for v in insts),
            "auc": round(auc(s, org_s), 4),
            "mean_ring_capture": round(float(np.mean([v["ring_capture"] for v in insts])), 4),
            "min_ring_purity": min((v["ring_purity"] for v in insts if v["ring_purity"] is not None), default=None),
            # The ring with most of a campaign's accounts is the only one that can hold >= 80 % of them.
            "campaigns_ringed": round(float(np.mean([(v["ring_capture"] or 0) >= RINGED_CAPTURE
                                                     and (v["ring_purity"] or 0) >= RINGED_PURITY
                                                     for v in insts])), 4),
        }
    if "account_shapes" in truth:
        by_shape: dict[str, list[str]] = defaultdict(list)
        for a, shape in truth["account_shapes"].items():
            by_shape[shape].append(a)
        out["shapes"] = {}
        for shape in SHAPES:
            s = np.array([score.get(a, 0.0) for a in by_shape.get(shape, [])])
            out["shapes"][shape] = {"accounts": len(s), "recall_at_1pct_fpr": _recall(s, cut),
                                    "recall_at_01pct_fpr": _recall(s, cut01)}
    # ---- hard negatives
    viral_sets = [(v["viral_id"], {a for a in v["accounts"] if labels.get(a) is None}) for v in truth["viral"]]
    viral_any = set().union(*(s for _, s in viral_sets)) if viral_sets else set()
    viral_rings, organic_rings = [], []
    for r in rings:
        n_org = sum(labels.get(a) is None for a in r)
        top = max(((vid, len(r & s)) for vid, s in viral_sets), key=lambda x: x[1], default=(None, 0))
        desc = {"size": len(r), "organic": n_org, "viral_senders": len(r & viral_any),
                "top_viral": top[0], "top_viral_senders": top[1]}
        if top[1] >= 0.5 * len(r):
            viral_rings.append(desc)
        if n_org >= 0.5 * len(r):
            organic_rings.append(desc)
    out["organic_rings_per_million_accounts"] = round(len(organic_rings) / max(len(labels), 1) * 1e6, 2)
    in_ring = set().union(*rings) if rings else set()
    apps = [s["account"] for s in truth["single_app"]]
    org_plain = [a for a in org if a not in set(apps)]
    vcut = np.percentile([volume.get(a, 0) for a in org_plain], 99, method="higher")
    heavy = [a for a in org_plain if volume.get(a, 0) >= vcut]

    def group(accs: list[str] | set[str]) -> dict:
        s = np.array([score.get(a, 0.0) for a in accs])
        return {"accounts": len(s), "above_cut": int((s > cut).sum()), "above_01pct_cut": int((s > cut01).sum()),
                "flagged": int((s >= FLAG_SCORE).sum()),
                "in_ring": sum(a in in_ring for a in accs), "max_score": round(float(s.max()), 4) if len(s) else None}

    out["negatives"] = {
        "viral_rings": viral_rings, "organic_rings": organic_rings,
        "viral_senders": group(viral_any),
        "single_app": [{"account": a, "exchanges": volume.get(a, 0), "score": round(score.get(a, 0.0), 4),
                        "above_cut": score.get(a, 0.0) > cut, "above_01pct_cut": score.get(a, 0.0) > cut01,
                        "in_ring": a in in_ring} for a in apps],
        "heavy_users": {**group(heavy), "min_exchanges": int(vcut)},
        "organic": group(org),
    }
    if "bank_bystanders" in truth:
        # Organic users who pasted a few public-bank questions that campaigns also send.
        out["negatives"]["bank_bystanders"] = group([a for a in truth["bank_bystanders"] if labels.get(a) is None])
    return out


def _sig_summary(acc) -> list[dict]:
    return [{"name": s.name, "value": round(s.value, 4), "background": round(s.background, 4),
             "score": round(s.score, 4)} for s in acc.signals]


def evaluate_engine(engine: Engine, truth: dict) -> dict:
    """:func:`evaluate` on an engine's current account scores and rings; ``n_rings`` added."""
    accs = engine.accounts(limit=None)
    rings = [set(r.accounts) for r in engine.rings(limit=None)]
    res = evaluate({a.account_id: a.score for a in accs}, rings, truth, {a.account_id: a.n_exchanges for a in accs})
    res["n_rings"] = len(rings)
    return res


def diagnose(engine: Engine, truth: dict, cut: float, n: int = 4) -> dict:
    """copyhound's signals for missed campaign accounts (per campaign) and the top organic accounts."""
    by_id = {a.account_id: a for a in engine.accounts(limit=None)}
    labels = truth["accounts"]
    viral_any = {a for v in truth["viral"] for a in v["accounts"]}
    apps = {s["account"] for s in truth["single_app"]}
    out: dict = {"missed": {}, "top_organic": []}
    for c in truth["campaigns"]:
        missed = sorted((a for a in c["accounts"] if by_id[a].score <= cut), key=lambda a: -by_id[a].score)
        if missed:
            out["missed"][c["campaign_id"]] = {
                "n_missed": len(missed),
                "signal_names": dict(Counter(s.name for a in missed for s in by_id[a].signals)),
                "examples": [{"account": a, "score": by_id[a].score, "exchanges": by_id[a].n_exchanges,
                              "signals": _sig_summary(by_id[a])} for a in missed[:n]],
            }
    org = sorted((a for a in by_id.values() if labels.get(a.account_id) is None), key=lambda a: -a.score)
    for a in org[: 2 * n]:
        if a.score <= 0:
            break
        role = ("single_app" if a.account_id in apps else "viral_sender" if a.account_id in viral_any
                else "organic")
        out["top_organic"].append({"account": a.account_id, "role": role, "score": a.score, "ring": a.ring_id,
                                   "exchanges": a.n_exchanges, "signals": _sig_summary(a)})
    return out


# ---------------------------------------------------------------------------------- one scenario
def run_scenario(name: str, workdir: Path, max_accounts: int, fresh: bool, encoder: str = "minilm",
                 recheck: bool = False) -> dict:
    folder = workdir / name
    ws = folder / "ws"
    if fresh and ws.exists():
        shutil.rmtree(ws)
    t0 = time.perf_counter()
    traffic, truth = scenarios.build(name, folder)
    t_build = time.perf_counter() - t0
    engine = Engine(ws, config=EngineConfig(encoder=encoder))
    t0 = time.perf_counter()
    ing = engine.ingest([traffic])
    t_ingest = time.perf_counter() - t0
    t0 = time.perf_counter()
    scan = engine.scan(force=True, recheck=recheck)
    t_scan = time.perf_counter() - t0
    timing_file = folder / f"scan_timing.{engine.encoder_name}{'+recheck' if recheck else ''}.json"
    if scan.embedded > 0 or not timing_file.exists():  # this run did the work: keep its timing
        timing_file.write_text(json.dumps({"ingest_s": round(t_ingest, 2), "scan_s": round(t_scan, 2),
                                           "scan": scan.to_dict()}, default=str))
    full_timing = json.loads(timing_file.read_text())
    status = engine.status()

    accs = engine.accounts(limit=None)
    scores = {"copyhound": {a.account_id: a.score for a in accs}}
    volume = {a.account_id: a.n_exchanges for a in accs}
    rings = {"copyhound": [set(r.accounts) for r in engine.rings(limit=None)]}
    all_accounts = sorted(truth["accounts"])
    missing = set(all_accounts) - set(volume)
    if missing:
        raise SystemExit(f"{name}: {len(missing)} truth accounts have no score, e.g. {sorted(missing)[:3]}")

    bl_info, bl_time = {}, {}
    t0 = time.perf_counter()
    acc_col, pids, fps, texts = _load_exchanges(engine)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores["exact"], rings["exact"], bl_info["exact"] = baseline(acc_col, fps, all_accounts, max_accounts)
    bl_time["exact"] = round(time.perf_counter() - t0 + t_load, 2)
    t0 = time.perf_counter()
    fam = minhash_families(texts)
    fam_ids = np.array([fam[p] for p in pids.tolist()], dtype=np.int64)
    scores["minhash"], rings["minhash"], bl_info["minhash"] = baseline(acc_col, fam_ids, all_accounts, max_accounts)
    bl_info["minhash"]["families_multi"] = int(sum(c > 1 for c in Counter(fam.values()).values()))
    bl_time["minhash"] = round(time.perf_counter() - t0 + t_load, 2)

    res = {m: evaluate(scores[m], rings[m], truth, volume) for m in METHODS}
    # Engine's own operating point, besides the 1%-FPR cut.
    labels = truth["accounts"]
    ch = np.array([scores["copyhound"][a] for a in all_accounts])
    is_camp = np.array([labels[a] is not None for a in all_accounts])
    res["copyhound"]["at_flag_score"] = {
        "flag_score": FLAG_SCORE, "recall": round(float((ch[is_camp] >= FLAG_SCORE).mean()), 4),
        "organic_fpr": round(float((ch[~is_camp] >= FLAG_SCORE).mean()), 5),
        "organic_flagged": int((ch[~is_camp] >= FLAG_SCORE).sum())}
    for m in METHODS:
        res[m]["runtime_s"] = bl_time.get(m, full_timing["scan_s"])
    for m in ("exact", "minhash"):
        res[m]["graph"] = bl_info[m]
    return {
        "scenario": name, "traffic": str(traffic), "workspace": str(ws),
        "exchanges": status.exchanges, "accounts": status.accounts, "prompts": status.prompts,
        "campaign_accounts": int(is_camp.sum()), "organic_accounts": int((~is_camp).sum()),
        "timing": {"build_s": round(t_build, 2), "ingest_s_this_run": round(t_ingest, 2),
                   "rows_loaded_this_run": ing.rows_loaded,
                   "scan_s_this_run": round(t_scan, 2), "first_scan": full_timing},
        "max_accounts_per_item": max_accounts,
        "methods": res,
        "diagnosis": diagnose(engine, truth, res["copyhound"]["cut_at_1pct_fpr"]),
    }


def _summary(r: dict) -> str:
    rows = []
    camps = r["methods"]["copyhound"]["campaigns"]
    for cid, c in camps.items():
        row = {"campaign": cid, "kind": c["kind"], "n": c["accounts"]}
        for m, tag in zip(METHODS, ("ch", "ex", "mh"), strict=True):
            v = r["methods"][m]["campaigns"][cid]
            row[f"{tag}_rec"] = v["recall_at_1pct_fpr"]
            row[f"{tag}_auc"] = v["auc"]
            row[f"{tag}_ring"] = f"{v['ring_capture'] or 0:.2f}/{v['ring_purity'] or 0:.2f}"
        rows.append(row)
    cols = ["campaign", "kind", "n"] + [f"{t}_{x}" for t in ("ch", "ex", "mh") for x in ("rec", "auc", "ring")]
    neg = []
    for m in METHODS:
        n = r["methods"][m]["negatives"]
        neg.append({"method": m, "cut": r["methods"][m]["cut_at_1pct_fpr"], "fpr": r["methods"][m]["organic_fpr"],
                    "viral_rings": len(n["viral_rings"]), "organic_rings": len(n["organic_rings"]),
                    "viral_above": f"{n['viral_senders']['above_cut']}/{n['viral_senders']['accounts']}",
                    "apps_above": sum(a["above_cut"] for a in n["single_app"]),
                    "heavy_above": f"{n['heavy_users']['above_cut']}/{n['heavy_users']['accounts']}",
                    "runtime_s": r["methods"][m]["runtime_s"]})
    head = (f"== {r['scenario']}: {r['exchanges']:,} exchanges, {r['accounts']:,} accounts, {r['prompts']:,} prompts "
            f"(rec = recall at 1% organic FPR, ring = capture/purity; ch = copyhound, ex = exact, mh = minhash)")
    return "\n".join([head, table(rows, cols), "", table(neg, list(neg[0]))])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detect_eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=list(scenarios.SCENARIOS), choices=list(scenarios.SCENARIOS))
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/detect_eval"))
    ap.add_argument("--max-accounts", type=int, default=20, help="baselines ignore items sent by more accounts")
    ap.add_argument("--fresh", action="store_true", help="delete each scenario's workspace first (full timing)")
    ap.add_argument("--out", default="detect_eval")
    ap.add_argument("--encoder", default="minilm", help="minilm, onnx (int8 MiniLM) or static (the fast tier)")
    ap.add_argument("--recheck", action="store_true", help="a fast tier with the transformer re-check")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    results = [run_scenario(s, args.workdir, args.max_accounts, args.fresh, args.encoder, args.recheck)
               for s in args.scenarios]
    summary = "\n\n".join(_summary(r) for r in results)
    write_results(args.out, envelope("detect_eval", encoder=args.encoder, recheck=args.recheck,
                                     scenarios=results), summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
