"""Tests for the season profile of the generator, checked on the rows it writes and their truth."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from synth.config import COLUMNS, META_COLUMNS
from synth.generator import SynthConfig, truth_path_for, write_synth
from synth.season import SeasonPlan

N = 30_000
# sha256 of `write_synth(SynthConfig(exchanges=3000, seed=5), "small.jsonl")` and its truth, taken
# before the season profile existed: the default profile must never change its output.
DEFAULT_3000_SEED5 = "93faf4915f902266bd4b1c6877426c79adea4d92816a3945b0af873352c0a912"
DEFAULT_3000_SEED5_TRUTH = "2e446602e506f7fc5da0652c33ca9dff5f20352be70531c37a777c561e31ae7e"


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, str]], dict]:
    out = tmp_path_factory.mktemp("season") / "traffic.jsonl"
    result = write_synth(SynthConfig(exchanges=N, seed=0, profile="season"), out)
    with out.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return rows, json.loads(result.truth_path.read_text(encoding="utf-8"))


def _per_account(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        out[r["account_id"]].append(r)
    return out


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9]+", text.lower()))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def _common_affix(texts: list[str]) -> tuple[str, str]:
    first, last = min(texts), max(texts)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    rev = [t[::-1] for t in texts]
    f, g = min(rev), max(rev)
    j = 0
    while j < min(len(f), len(g)) and f[j] == g[j]:
        j += 1
    return first[:i], f[:j][::-1]


def test_default_profile_output_is_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "small.jsonl"
    write_synth(SynthConfig(exchanges=3000, seed=5), out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == DEFAULT_3000_SEED5
    assert hashlib.sha256(truth_path_for(out).read_bytes()).hexdigest() == DEFAULT_3000_SEED5_TRUTH


def test_season_is_deterministic_with_metadata_columns(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for p in (a, b):
        write_synth(SynthConfig(exchanges=4000, seed=2, profile="season"), p)
    assert a.read_bytes() == b.read_bytes()
    assert truth_path_for(a).read_bytes() == truth_path_for(b).read_bytes()
    first = json.loads(a.read_text(encoding="utf-8").splitlines()[0])
    assert tuple(first) == COLUMNS + META_COLUMNS


def test_truth_format(season) -> None:
    rows, truth = season
    assert len(rows) == N
    assert truth["config"]["profile"] == "season"
    assert {c["kind"] for c in truth["campaigns"]} == {"copy_ring", "template_sweep", "cot_elicitation", "low_slow"}
    for c in truth["campaigns"]:
        assert c["infra"] in ("strong", "medium", "none")
        assert c["bank"] is None or c["bank"] in {b["bank_id"] for b in truth["banks"]}
    camp_accounts = {a for a, c in truth["accounts"].items() if c is not None}
    assert set(truth["account_shapes"]) == camp_accounts
    # Several independent instances of each kind, of different sizes.
    by_kind = defaultdict(list)
    for c in truth["campaigns"]:
        by_kind[c["kind"]].append(len(c["accounts"]))
    assert all(len(v) >= 3 and max(v) >= 2 * min(v) for v in by_kind.values())


def test_account_shapes_match_the_rows(season) -> None:
    rows, truth = season
    shapes, per = truth["account_shapes"], _per_account(rows)
    counts = Counter(shapes.values())
    assert counts["thin"] and counts["heavy"] and counts["regular"]
    assert 0.2 <= counts["diluted"] / len(shapes) <= 0.45
    for a, shape in shapes.items():
        n = len(per[a])
        if shape == "thin":
            assert n <= 5
        elif shape == "heavy":
            assert n >= 200
        elif shape == "regular":
            assert 5 < n < 200
    # Campaign share from content, where a campaign's rows carry a fixed prefix or suffix (its
    # preamble or its template): diluted accounts send under half campaign rows, the others over half.
    checked = 0
    for c in truth["campaigns"]:
        if c["kind"] not in ("low_slow", "template_sweep") or len(c["example_prompts"]) < 3:
            continue
        prefix, suffix = _common_affix(list(c["example_prompts"]))
        # Only the fixed part: five examples can also share the start of a task or of a slot value.
        prefix, suffix = prefix[:40], suffix[-40:]
        if len(prefix) < 30 and len(suffix) < 30:
            continue
        for a in c["accounts"]:
            texts = [r["prompt"] for r in per[a]]
            hit = sum(t.startswith(prefix) if len(prefix) >= 30 else t.endswith(suffix) for t in texts)
            share = hit / len(texts)
            assert (share < 0.5) == (shapes[a] == "diluted"), (c["campaign_id"], a, share, shapes[a])
            checked += 1
    assert checked >= 20


def test_campaigns_sharing_a_bank_overlap_and_bystanders_send_bank_prompts(season) -> None:
    rows, truth = season
    labels = truth["accounts"]
    texts: dict[str, list[frozenset[str]]] = defaultdict(list)
    for r in rows:
        cid = labels[r["account_id"]]
        if cid is not None and cid.startswith("copy_ring"):
            texts[cid].append(_words(r["prompt"]))
    by_bank = defaultdict(list)
    for c in truth["campaigns"]:
        if c["kind"] == "copy_ring" and c["bank"]:
            by_bank[c["bank"]].append(c["campaign_id"])
    pairs = [(v[0], v[1]) for v in by_bank.values() if len(v) >= 2]
    assert pairs, "no two copy rings share a bank"
    for x, y in pairs:
        ys = texts[y]
        shared = sum(any(_jaccard(t, u) >= 0.6 for u in ys) for t in texts[x][:150])
        assert shared >= 5, (x, y, shared)
    organic = [a for a, c in labels.items() if c is None]
    bystanders = truth["bank_bystanders"]
    assert all(labels[a] is None for a in bystanders)
    assert 0.01 <= len(bystanders) / len(organic) <= 0.06


def test_integrations_are_single_organic_accounts_with_one_template(season) -> None:
    rows, truth = season
    per = _per_account(rows)
    assert len(truth["single_app"]) >= 4
    for app in truth["single_app"]:
        a = app["account"]
        assert truth["accounts"][a] is None
        assert app["exchanges"] == len(per[a]) >= 100
        head = app["template"].split("{", 1)[0]
        assert len(head) >= 10 and all(r["prompt"].startswith(head) for r in per[a])
        assert len({r["ip"] for r in per[a]}) <= 5 and len({r["client"] for r in per[a]}) == 1


def test_metadata_has_an_organic_spread_and_campaign_traces(season) -> None:
    rows, truth = season
    labels = truth["accounts"]
    per = _per_account(rows)
    for rs in per.values():
        assert len({r["payment"] for r in rs}) == 1 and len({r["key_created"] for r in rs}) == 1
        assert rs[0]["key_created"] <= min(r["timestamp"] for r in rs)[:10]
        assert re.fullmatch(r"[0-9a-f]{12}", rs[0]["payment"])
    organic = [a for a in per if labels[a] is None]
    pay = Counter(per[a][0]["payment"] for a in organic)
    assert sum(v == 1 for v in pay.values()) / len(pay) > 0.8  # most fingerprints are one person's
    assert max(pay.values()) >= 5  # a company or a big family
    clients = Counter(r["client"] for a in organic for r in per[a])
    assert clients.most_common(1)[0][1] > 0.2 * sum(clients.values())
    ip_users = defaultdict(set)
    for a in organic:
        for r in per[a]:
            ip_users[r["ip"]].add(a)
    assert max(len(v) for v in ip_users.values()) >= 5  # carrier-grade NAT
    years = {per[a][0]["key_created"][:4] for a in organic}
    assert len(years) >= 4
    strong = [c for c in truth["campaigns"] if c["infra"] == "strong" and len(c["accounts"]) >= 3]
    none = [c for c in truth["campaigns"] if c["infra"] == "none" and len(c["accounts"]) >= 3]
    assert strong and none
    for c in strong:
        assert len({per[a][0]["payment"] for a in c["accounts"]}) <= 3
        assert len({per[a][0]["client"] for a in c["accounts"]}) == 1
    for c in none:
        assert len({per[a][0]["payment"] for a in c["accounts"]}) == len(c["accounts"])
    # A datacenter campaign's accounts, diluted ones included, send everything from its pools.
    dc = [c for c in truth["campaigns"] if "datacenter pool" in c["description"] and len(c["accounts"]) >= 5]
    assert dc
    for c in dc:
        nets = {r["ip"].rsplit(".", 1)[0] for a in c["accounts"] for r in per[a]}
        assert len(nets) <= max(2, len(c["accounts"]) // 2)


def test_season_scale_at_one_million() -> None:
    """Planning alone (no text): a few thousand campaign accounts among ~150-200k organic ones."""
    plan = SeasonPlan(SynthConfig(exchanges=1_000_000, seed=0, profile="season"))
    n_camp = int((plan.camp_of >= 0).sum())
    assert 1500 <= n_camp <= 8000
    assert 140_000 <= plan.n_organic <= 210_000
    assert plan.n_app >= 20
    assert len(set(plan.app_template_idx.tolist())) < plan.n_app  # popular templates are shared
    sizes = [len(c.accounts) for c in plan.campaigns]
    assert max(sizes) >= 100 and min(sizes) <= 10
