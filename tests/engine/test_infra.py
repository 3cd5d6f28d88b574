"""Infrastructure links (`engine.detect.infra`): resource allocation, each type's own null, evidence."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from engine.detect.infra import LINK_TYPES, build_infra_links, describe_ring
from engine.store.migrations import MIGRATIONS

T0 = datetime(2024, 5, 1)
COMMON_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


def load(rows: list[tuple[str, datetime, str | None, dict | None]]) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory workspace whose exchanges are `rows` (account, ts, ip, meta)."""
    con = duckdb.connect()
    for m in MIGRATIONS:
        m(con)
    t = pa.table({  # noqa: F841 (read by DuckDB)
        "acc": [r[0] for r in rows], "ts": [r[1] for r in rows], "ip": pa.array([r[2] for r in rows], pa.string()),
        "meta": pa.array([None if r[3] is None else json.dumps(r[3]) for r in rows], pa.string()),
    })
    con.execute("INSERT INTO exchanges SELECT row_number() OVER ()::VARCHAR, acc, ts, 0, NULL, NULL, ip, "
                "meta::JSON, 0, 0 FROM t")
    return con


def when(rng: np.random.Generator, days: int = 30) -> datetime:
    return T0 + timedelta(seconds=int(rng.integers(0, days * 86400)))


def organic(rng: np.random.Generator, n: int, prefix: str = "org", per: int = 4) -> list[tuple]:
    """Accounts at home addresses (one in twenty shares it with a housemate), most on the commonest
    browser, at random times."""
    rows = []
    ip = ""
    for i in range(n):
        if i % 20 != 1:
            ip = f"11.{rng.integers(256)}.{rng.integers(256)}.{rng.integers(1, 255)}"
        ua = COMMON_UA if rng.random() < 0.7 else f"client-{i}"
        rows += [(f"{prefix}{i:05d}", when(rng), ip, {"client": ua}) for _ in range(per)]
    return rows


@pytest.fixture(scope="module")
def campaign():
    rng = np.random.default_rng(1)
    rows = organic(rng, 4000)
    # 300 honest accounts behind one carrier-grade NAT address, on the commonest browser.
    rows += [(f"cg{i:03d}", when(rng), "100.64.0.1", {"user_agent": COMMON_UA}) for i in range(300) for _ in range(4)]
    # 12 campaign accounts on a proxy provider's /24 (three to an address), one client build, one card.
    rows += [(f"camp{i:02d}", when(rng), f"203.0.113.{10 + i % 4}",
              {"client": "distill-bot/0.3", "payment": "card:4242-ab12", "key_created": "2024-04-30"})
             for i in range(12) for _ in range(4)]
    con = load(rows)
    return con, build_infra_links(con, seed=0)


def _pairs(g, prefix_a: str, prefix_b: str | None = None) -> list[tuple[str, str]]:
    prefix_b = prefix_b or prefix_a
    return [(g.accounts[a], g.accounts[b]) for a, b in zip(g.a.tolist(), g.b.tolist(), strict=True)
            if g.accounts[a].startswith(prefix_a) and g.accounts[b].startswith(prefix_b)]


def test_campaign_linked_and_cgnat_not(campaign):
    _, g = campaign
    assert len(_pairs(g, "camp")) == 66
    assert _pairs(g, "cg") == []
    # Organic accounts link only by chance, and rarely.
    assert len(_pairs(g, "org")) <= 40
    assert g.cuts["combined"] >= 1.0 and set(g.cuts) >= {"ip", "subnet", "client"}


def test_campaign_evidence(campaign):
    _, g = campaign
    i, j = g.accounts.index("camp00"), g.accounts.index("camp01")
    ev = g.evidence[(i, j)]
    kinds = {e["type"]: e for e in ev}
    assert kinds["subnet"]["value"] == "203.0.113.0/24" and kinds["subnet"]["n_accounts"] == 12
    assert kinds["client"]["value"] == "distill-bot/0.3"
    assert kinds["payment"]["n_accounts"] == 12
    assert kinds["key"]["value"] == "2024-04-30"  # supporting evidence only
    assert "ip" not in kinds  # camp00 and camp01 are on different addresses
    same_ip = g.evidence[(i, g.accounts.index("camp04"))]
    assert any(e["type"] == "ip" and e["value"] == "203.0.113.10" for e in same_ip)
    k = int(np.flatnonzero((g.a == i) & (g.b == j))[0])
    assert g.by_type["subnet"][k] == pytest.approx(1 / 11, abs=1e-6)
    assert g.weight[k] > g.threshold


def test_ring_description(campaign):
    con, g = campaign
    members = np.array([g.accounts.index(f"camp{i:02d}") for i in range(10)])
    info = describe_ring(con, members)
    text = info.text
    assert "shared /24 203.0.113.0/24 with 12 accounts, 10 of them in this ring" in text
    assert "same client distill-bot/0.3 with 12 accounts, 10 of them in this ring" in text
    assert "one payment fingerprint on 12 accounts, 10 of them in this ring" in text
    assert "card:4242" not in text  # payment values stay in the evidence dicts, not in prose


def test_empty_metadata_is_empty_and_quick():
    rng = np.random.default_rng(0)
    con = load([(f"a{i}", when(rng), None, None) for i in range(200)])
    g = build_infra_links(con)
    assert len(g.a) == 0 and len(g.accounts) == 200 and g.evidence == {}
    assert describe_ring(con, np.arange(5)).items == ()


def test_synchronised_accounts_linked():
    rng = np.random.default_rng(2)
    # Timestamps only count where a workspace has addresses or metadata: each account has its own client.
    rows = [(f"org{i:05d}", when(rng), None, {"client": f"c{i}"}) for i in range(3000) for _ in range(6)]
    windows = [T0 + timedelta(minutes=10 * int(w)) for w in rng.choice(30 * 144, 40, replace=False)]
    rows += [(f"bot{i:02d}", w + timedelta(seconds=int(rng.integers(0, 600))), None, {"client": f"b{i}"})
             for i in range(8) for w in windows]
    con = load(rows)
    g = build_infra_links(con)
    assert len(_pairs(g, "bot")) == 28
    assert len(_pairs(g, "org")) <= 30
    i, j = g.accounts.index("bot00"), g.accounts.index("bot01")
    (sync,) = [e for e in g.evidence[(i, j)] if e["type"] == "sync"]
    assert sync["n_windows"] == 40
    assert "10-minute windows" in describe_ring(con, np.array([i, j, g.accounts.index("bot02")])).text


@pytest.mark.parametrize("kind", LINK_TYPES)
def test_random_assignment_gives_few_links(kind):
    """Resources handed out at random are what the null draws: about 1 % of accounts or fewer link."""
    rng = np.random.default_rng(3)
    n = 2000
    rows = []
    for i in range(n):
        for _ in range(3):
            ip, meta, ts = None, None, when(rng)
            r = int(rng.integers(0, 1200))
            if kind == "ip":
                ip = f"10.0.{r // 250}.{r % 250}"
            elif kind == "subnet":
                ip = f"10.{r // 250}.{r % 250}.{rng.integers(1, 255)}"
            elif kind == "client":
                meta = {"ua": f"sdk/{r}"}
            elif kind == "payment":
                meta = {"payment": f"fp{r}"}
            rows.append((f"a{i:05d}", ts, ip, meta))
    con = load(rows)
    g = build_infra_links(con, seed=1)
    linked = set(g.a.tolist()) | set(g.b.tolist())
    assert len(linked) <= 0.03 * n, (kind, len(linked))


def test_engine_scan_reports_infrastructure(tmp_path, static_encoder, organic):
    """Ingest ip/client/payment columns, scan, and find the infra evidence in links and signals."""
    from engine import Engine
    from tests.fixtures.traffic import ring_traffic, write_jsonl

    rng = np.random.default_rng(4)
    rows = ring_traffic(organic)
    for r in rows:
        if r["account_id"].startswith("ring_"):
            m = int(r["account_id"][-1])
            r.update(ip=f"203.0.113.{10 + m // 2}", client="distill-bot/0.3", payment="card-77")
        else:
            r.update(ip=f"11.{rng.integers(256)}.{rng.integers(256)}.{rng.integers(1, 255)}", client=COMMON_UA)
    ip = ""
    for i in range(1500):  # a background big enough for the nulls: one exchange each
        ip = ip if i % 20 == 1 else f"12.{rng.integers(256)}.{rng.integers(256)}.{rng.integers(1, 255)}"
        rows.append({"account_id": f"bg_{i:04d}", "timestamp": 1760000000 + int(rng.integers(0, 30 * 86400)),
                     "prompt": f"note {i}: " + " ".join(f"w{int(x)}" for x in rng.integers(0, 5000, 8)),
                     "ip": ip, "client": COMMON_UA if i % 3 else f"app/{i}"})
    # An office: 30 honest accounts on one /24 with the company's SDK build, no shared content.
    for i in range(30):
        rows.append({"account_id": f"office_{i:02d}", "timestamp": 1765000000 + int(rng.integers(0, 8 * 3600)),
                     "prompt": f"office {i}: " + " ".join(f"v{int(x)}" for x in rng.integers(0, 5000, 8)),
                     "ip": f"198.51.100.{i + 2}", "client": "corp-sdk/2.1"})
    engine = Engine(tmp_path / "ws", encoder=static_encoder)
    engine.ingest([write_jsonl(tmp_path / "traffic.jsonl", rows)])
    engine.scan()
    with engine.store.connect() as con:
        links = {(a, b): json.loads(ev) for a, b, ev in con.execute(
            "SELECT account_a, account_b, evidence FROM account_links").fetchall()}
        scores = {a: (s, r, json.loads(sig)) for a, s, r, sig in con.execute(
            "SELECT account_id, score, ring_id, signals FROM account_scores").fetchall()}
    ev = links[("ring_0", "ring_1")]
    infra = {e["type"]: e for e in ev["infrastructure"]}
    assert infra["ip"]["value"] == "203.0.113.10" and infra["client"]["value"] == "distill-bot/0.3"
    assert "families" in ev
    sig = {s["name"]: s for s in scores["ring_0"][2]}["shared_infrastructure"]
    assert sig["score"] > 0 and sig["examples"][0]["infrastructure"]
    assert all(scores[f"office_{i:02d}"][0] < 0.5 and scores[f"office_{i:02d}"][1] is None for i in range(30))
    ring = engine.rings(limit=5)[0]
    inf = [s for s in ring.signals if s.name == "shared_infrastructure"]
    assert inf and "203.0.113" in inf[0].detail


def test_redaction_drops_addresses_and_payment_fingerprints():
    from engine.query.analyst import infra_labels
    from engine.query.redact import Redactor

    evidence = {"families": [], "templates": [], "infrastructure": [
        {"type": "ip", "value": "203.0.113.10", "n_accounts": 3, "weight": 0.5},
        {"type": "subnet", "value": "2001:db8:1::/48", "n_accounts": 12, "weight": 0.09},
        {"type": "client", "value": "distill-bot/0.3", "n_accounts": 12, "weight": 0.09},
        {"type": "payment", "value": "card:4242-ab12", "n_accounts": 12, "weight": 0.09}]}
    signal = {"name": "shared_infrastructure", "detail": "shared /24 203.0.113.0/24 with 41 accounts at 10:20:30",
              "examples": [{"other_account": "b", "evidence": json.dumps(evidence)}]}
    out = Redactor(None).redact(signal)
    text = json.dumps(out)
    assert "203.0.113" not in text and "2001:db8" not in text and "4242" not in text
    assert "distill-bot/0.3" in text and "[address]" in out["detail"] and "10:20:30" in out["detail"]
    assert infra_labels(json.dumps(evidence))[-1] == "payment (12 accounts)"
