"""Account links from shared infrastructure and metadata, each type cut at its own null model.

Campaigns spread over many accounts usually run through a few proxy networks, one client build and one
billing setup, and their scripts run in step. This module links accounts that share such traces *more
than chance would give accounts this active*, with the same machinery as content links
(:mod:`engine.detect.links`).

**Resources and types.** Each exchange's ``ip`` and ``meta`` give an account a set of resources of five
types: ``ip`` (the exact address), ``subnet`` (IPv4 /24, IPv6 /48; an IPv4-mapped IPv6 address counts
as IPv4), ``client`` (``meta`` key ``client``, or its aliases ``user_agent`` / ``ua``), ``payment``
(``meta`` key ``payment``) and ``sync`` (the 10-minute windows the account was active in). A sixth,
``key`` (``meta`` key ``key_created``, its date), is only shown as supporting evidence on pairs already
linked: keys are created in bursts for organic reasons too (a launch, a class, a hackathon).

**Weight** (resource allocation). A resource shared by ``k`` accounts adds ``1 / (k - 1)`` to each of
its pairs, so a mobile carrier's CGNAT address or the commonest SDK user agent, shared by thousands,
links nobody, and two accounts alone on an address weigh 1. Relations are sets (an account's 500
exchanges from one address count once: volume is not evidence of sharing). Resources with more than
``max_resource_accounts`` accounts generate no pairs, and the cap is lowered per type until the pair
count fits ``max_pairs``: a skipped resource's per-pair weight is below ``1 / (cap - 1)`` anyway, and
the bound keeps 10-minute windows of a busy service (thousands of accounts each) from producing
billions of pairs.

**Null** (per type). The account column of each type's relations is permuted ``n_null`` times, which
keeps every account's number of resources and every resource's number of accounts and only breaks *who*
shares with whom; for ``sync`` the permutation stays within the hour of day, so each account keeps its
daily rhythm (two night owls in one time zone are active together by habit, not by script). Every
account's strongest chance link per type is taken; the type's *cut* ``c_t`` is the ``null_quantile``
(99 %) of those maxima over all accounts with a resource of that type (floored at ``1 / (cap - 1)``,
the weakest pair weight that can occur).

**One scale and the combined cut.** A pair's infra weight is
``max(w_ip / c_ip, w_subnet / c_subnet) + w_client / c_client + w_payment / c_payment + w_sync / c_sync``:
each type divided by its own cut, so 1.0 means "at the chance cut" of that type; an address and its /24
are nested (sharing the one implies the other) and count once, by the stronger. The same sum over the
shuffled draws (types shuffled independently) gives the chance distribution of the combined weight; a
pair is linked when its weight exceeds the ``combined_quantile`` of the per-account maxima of that, 1.0,
and each of the two accounts' own strongest chance weight (a heavy user meets more accounts by volume).
That quantile is 99.9 %, stricter than content's 99 % on purpose: every account has an address and
activity windows, and chance-level sharing of several types adds up (a CGNAT address plus one window
shared with one other account), so 99 % would link about 1 % of all accounts, 20,000 of two million, on
noise (the test world of ``tests/engine/test_infra.py`` links three CGNAT pairs at 99 %, none at 99.9 %).
So a pair can pass on one type far past its cut, or on several types each near theirs: the conjunction
of a rare /24, the same client build and synchronised sessions is what chance rarely gives.

**Known limits.** Offices, universities and households behind one NAT, VPN exit nodes and CGNAT make
honest accounts share addresses; resource allocation discounts the big ones, but a 30-person office
/24 is a real, small shared resource, which is why scoring treats infrastructure as supporting
evidence only (:mod:`engine.detect.fusion`). Rotating residential proxies give each request a fresh
address from millions and leave almost no shared address; their client string and timing still can.
IPv6 privacy addresses rotate within a /64, so the /48 carries the signal; a provider handing out /56
per home puts several homes in one /48 (weaker evidence, discounted by its size like any resource).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

__all__ = ["LINK_TYPES", "InfraLinks", "RingInfrastructure", "build_infra_links", "describe_ring"]

# Types that make links, in the order evidence lists them; "key" is evidence only.
LINK_TYPES = ("ip", "subnet", "client", "payment", "sync")
SYNC_SECONDS = 600
_LABEL = {"ip": "IP", "subnet": "subnet", "client": "client", "payment": "payment fingerprint",
          "sync": "10-minute windows", "key": "API keys created on"}
# Types whose resource values name a person or a card: never written into free text (evidence dicts
# carry them under "value", which `engine.query.redact` drops for these types).
PRIVATE_TYPES = frozenset({"ip", "subnet", "payment"})


@dataclass(frozen=True)
class InfraLinks:
    """Significant infrastructure links.

    Parallel arrays, one entry per kept pair ``a < b`` (indices into ``accounts``, sorted account ids, the
    same indexing as :class:`engine.detect.links.LinkGraph`): ``weight`` float64 combined weight on the
    normalised scale (1.0 = a type's chance cut, see module doc); ``n_shared`` int64 shared resources.
    ``by_type`` maps each link type to its raw resource-allocation weight per pair (float64, 0 where the
    pair shares nothing of that type); ``cuts`` each type's chance cut and ``"combined"`` the combined
    cut; ``evidence`` maps ``(a, b)`` to a list of JSON-ready dicts
    (``{"type": "subnet", "value": "203.0.113.0/24", "n_accounts": 41, "weight": 0.025}``).
    """

    accounts: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    weight: np.ndarray
    n_shared: np.ndarray
    by_type: dict[str, np.ndarray] = field(default_factory=dict)
    cuts: dict[str, float] = field(default_factory=dict)
    evidence: dict[tuple[int, int], list[dict]] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The combined cut every kept pair exceeds (normalised scale; 1.0 when nothing was tested)."""
        return float(self.cuts.get("combined", 1.0))


@dataclass(frozen=True)
class RingInfrastructure:
    """Resources shared by two or more members of a ring: ``items`` JSON-ready dicts, strongest first
    (``type``, ``value``, ``n_accounts`` in the workspace, ``n_members`` in the ring); ``text`` one line
    per item for an analyst, with addresses but never payment fingerprints."""

    n_members: int
    items: tuple[dict, ...]

    @property
    def text(self) -> str:
        return "; ".join(_describe(it) for it in self.items)


def _describe(it: dict) -> str:
    if it["type"] == "sync":
        return (f"active together in {it['n_windows']} 10-minute windows "
                f"({it['n_members']} of the ring's accounts in each, on average {it['mean_accounts']:.0f} "
                f"accounts in the workspace)")
    if it["type"] == "payment":
        return f"one payment fingerprint on {it['n_accounts']} accounts, {it['n_members']} of them in this ring"
    what = {"ip": "shared IP", "subnet": "shared /24" if "." in str(it["value"]) else "shared /48",
            "client": "same client", "key": "API keys created on"}[it["type"]]
    return f"{what} {it['value']} with {it['n_accounts']} accounts, {it['n_members']} of them in this ring"


def _empty(accounts: tuple[str, ...], cuts: dict | None = None) -> InfraLinks:
    e = np.empty(0, dtype=np.int64)
    return InfraLinks(accounts, e, e, e.astype(np.float64), e, {t: e.astype(np.float64) for t in LINK_TYPES},
                      cuts or {})


def has_infrastructure(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any exchange carries an address or metadata (cheap: stops at the first one)."""
    return bool(con.execute("SELECT EXISTS (SELECT 1 FROM exchanges WHERE ip IS NOT NULL OR meta IS NOT NULL)"
                            ).fetchall()[0][0])


def build_relations(con: duckdb.DuckDBPyConnection) -> None:
    """Temp tables ``_if_acc(account_id, acc)`` and ``_if_rel(acc, type, res, stratum, item, k)``: the
    distinct (account, resource) relations of every type, ``item`` a dense id per type, ``k`` the
    resource's number of accounts."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _if_acc AS "
        "SELECT account_id, (row_number() OVER (ORDER BY account_id) - 1)::BIGINT AS acc "
        "FROM (SELECT DISTINCT account_id FROM exchanges)"
    )
    # IPv6 (and IPv4-mapped) prefixes in Python: SQL cannot expand "::" shorthand. Only distinct
    # addresses with a colon come here, few next to the exchanges.
    v6 = [r[0] for r in con.execute(
        "SELECT DISTINCT trim(ip) FROM exchanges WHERE ip IS NOT NULL AND contains(ip, ':')").fetchall()]
    nets: list[str | None] = []
    for ip in v6:
        try:
            addr = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            nets.append(None)
            continue
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            nets.append(str(ipaddress.ip_network(f"{addr.ipv4_mapped}/24", strict=False)))
        else:
            nets.append(str(ipaddress.ip_network(f"{addr}/{48 if addr.version == 6 else 24}", strict=False)))
    con.register("_if_v6_arrow", pa.table({"ip": pa.array(v6, pa.string()), "net": pa.array(nets, pa.string())}))
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _if_rel AS
            WITH x AS (
                SELECT a.acc, nullif(trim(e.ip), '') AS ip, e.ts,
                       nullif(trim(coalesce(e.meta->>'client', e.meta->>'user_agent', e.meta->>'ua')), '') AS client,
                       nullif(trim(e.meta->>'payment'), '') AS payment,
                       nullif(left(trim(e.meta->>'key_created'), 10), '') AS key
                FROM exchanges e JOIN _if_acc a USING (account_id)
            ), r AS (
                SELECT DISTINCT acc, 'ip' AS type, ip AS res, 0 AS stratum FROM x WHERE ip IS NOT NULL
                UNION ALL
                SELECT DISTINCT x.acc, 'subnet', CASE
                    WHEN regexp_matches(x.ip, '^\\d{{1,3}}\\.\\d{{1,3}}\\.\\d{{1,3}}\\.\\d{{1,3}}$')
                    THEN regexp_extract(x.ip, '^(\\d+\\.\\d+\\.\\d+)\\.', 1) || '.0/24' ELSE v.net END, 0
                FROM x LEFT JOIN _if_v6_arrow v ON v.ip = x.ip WHERE x.ip IS NOT NULL
                UNION ALL
                SELECT DISTINCT acc, 'client', client, 0 FROM x WHERE client IS NOT NULL
                UNION ALL
                SELECT DISTINCT acc, 'payment', payment, 0 FROM x WHERE payment IS NOT NULL
                UNION ALL
                SELECT DISTINCT acc, 'key', key, 0 FROM x WHERE key IS NOT NULL
                UNION ALL
                SELECT DISTINCT acc, 'sync', (floor(epoch(ts) / {SYNC_SECONDS})::BIGINT)::VARCHAR,
                       (floor(epoch(ts) / 3600)::BIGINT % 24)::INTEGER
                FROM x WHERE ts IS NOT NULL
            )
            SELECT acc, type, res, stratum,
                   (dense_rank() OVER (PARTITION BY type ORDER BY res) - 1)::BIGINT AS item,
                   count(*) OVER (PARTITION BY type, res) AS k
            FROM r WHERE res IS NOT NULL
            """
        )
    finally:
        con.unregister("_if_v6_arrow")


def _cap(k_items: np.ndarray, max_k: int, max_pairs: int) -> int:
    """The largest resource size <= ``max_k`` whose resources, with every smaller one, make at most
    ``max_pairs`` pairs (1: none fit)."""
    ks, counts = np.unique(k_items[k_items >= 2], return_counts=True)
    cum = np.cumsum(counts * ks * (ks - 1) / 2.0)
    ok = ks[(cum <= max_pairs) & (ks <= max_k)]
    return int(ok.max()) if len(ok) else 1


_PAIRS = """
    SELECT r1.acc AS a, r2.acc AS b, round(sum(1.0 / (r1.k - 1)), 9) AS w, count(*) AS n
    FROM {t} r1 JOIN {t} r2 ON r1.item = r2.item AND r1.acc < r2.acc GROUP BY r1.acc, r2.acc
"""


def build_infra_links(
    con: duckdb.DuckDBPyConnection,
    *,
    max_resource_accounts: int = 500,
    max_pairs: int = 5_000_000,
    n_null: int = 3,
    null_quantile: float = 0.99,
    combined_quantile: float = 0.999,
    seed: int = 0,
    n_evidence: int = 3,
    keep_tables: bool = False,
    enabled: bool = True,
) -> InfraLinks:
    """Significant infrastructure links between accounts of ``exchanges`` (see module doc).

    Returns an empty :class:`InfraLinks` at once when no exchange has an address or metadata.
    ``max_pairs`` bounds the pairs of each type (real and per null draw); with ``keep_tables`` the
    relation tables stay for :func:`describe_ring` and the caller calls :func:`drop_infra_tables`.
    ``enabled=False`` returns the empty result whatever the workspace holds (an ablation's "no infra").
    """
    t0 = time.monotonic()
    accounts = tuple(r[0] for r in con.execute(
        "SELECT DISTINCT account_id FROM exchanges ORDER BY account_id").fetchall())
    if not enabled or not has_infrastructure(con):
        log.info("infra: %s", "switched off" if not enabled else "no addresses or metadata in this workspace")
        return _empty(accounts)
    build_relations(con)
    rng = np.random.default_rng(seed)
    cuts: dict[str, float] = {}
    con.execute("CREATE OR REPLACE TEMP TABLE _if_pairs (type VARCHAR, a BIGINT, b BIGINT, w DOUBLE, n BIGINT)")
    con.execute("CREATE OR REPLACE TEMP TABLE _if_null (draw INTEGER, type VARCHAR, a BIGINT, b BIGINT, w DOUBLE)")
    con.execute("CREATE OR REPLACE TEMP TABLE _if_caps (type VARCHAR, cap BIGINT)")
    active = np.zeros(len(accounts), dtype=bool)  # accounts with a resource of some link type
    for t in LINK_TYPES:
        rel = con.execute("SELECT acc, item, k, stratum FROM _if_rel WHERE type = ? ORDER BY item, acc",
                          [t]).fetchnumpy()
        acc = np.asarray(rel["acc"], dtype=np.int64)
        if len(acc) == 0:
            continue
        active[acc] = True
        k = np.asarray(rel["k"], dtype=np.int64)
        item = np.asarray(rel["item"], dtype=np.int64)
        cap = _cap(k[np.r_[True, item[1:] != item[:-1]]], max_resource_accounts, max_pairs)
        if cap < 2:
            continue
        con.execute("INSERT INTO _if_caps VALUES (?, ?)", [t, cap])
        keep = (k >= 2) & (k <= cap)
        real = pa.table({"acc": acc[keep], "item": item[keep], "k": k[keep]})  # noqa: F841 (read by DuckDB)
        con.execute(f"INSERT INTO _if_pairs SELECT '{t}', * FROM ({_PAIRS.format(t='real')})")
        stratum = np.asarray(rel["stratum"], dtype=np.int64)
        by_stratum = np.argsort(stratum, kind="stable")
        maxima = []
        for d in range(max(1, n_null)):
            # Permute accounts within each stratum: sort positions by (stratum, random key).
            shuffled = np.empty_like(acc)
            shuffled[by_stratum] = acc[np.lexsort((rng.random(len(acc)), stratum))]
            nul = pa.table({"acc": shuffled[keep], "item": item[keep], "k": k[keep]})  # noqa: F841
            con.execute("CREATE OR REPLACE TEMP TABLE _if_draw AS SELECT DISTINCT acc, item, k FROM nul")
            con.execute(f"INSERT INTO _if_null SELECT {d}, '{t}', a, b, w FROM ({_PAIRS.format(t='_if_draw')})")
            mx = np.zeros(len(accounts))
            m = con.execute(
                "SELECT acc, max(w) AS w FROM (SELECT a AS acc, w FROM _if_null WHERE draw = ? AND type = ? "
                "UNION ALL SELECT b, w FROM _if_null WHERE draw = ? AND type = ?) GROUP BY acc",
                [d, t, d, t]).fetchnumpy()
            mx[np.asarray(m["acc"], dtype=np.int64)] = np.asarray(m["w"], dtype=np.float64)
            maxima.append(mx[np.unique(acc)])
        cuts[t] = max(float(np.quantile(np.concatenate(maxima), null_quantile)), 1.0 / (cap - 1))
    con.execute("DROP TABLE IF EXISTS _if_draw")
    if not cuts:
        drop_infra_tables(con, keep=("_if_acc", "_if_rel") if keep_tables else ())
        log.info("infra: no resource shared by two accounts")
        return _empty(accounts, cuts)

    cut_rows = pa.table({"type": list(cuts), "c": list(cuts.values())})  # noqa: F841 (read by DuckDB)
    con.execute("CREATE OR REPLACE TEMP TABLE _if_cuts AS SELECT * FROM cut_rows")
    combine = """
        SELECT {g} a, b,
               -- Rounded as content weights are: DuckDB's threads sum in any order, and a pair at the cut
               -- would pass or fail by the last bit.
               round(greatest(coalesce(sum(w / c) FILTER (type = 'ip'), 0),
                              coalesce(sum(w / c) FILTER (type = 'subnet'), 0))
                     + coalesce(sum(w / c) FILTER (type NOT IN ('ip', 'subnet')), 0), 9) AS x
        FROM {t} JOIN _if_cuts USING (type) GROUP BY {g} a, b
    """
    null = con.execute(
        f"WITH p AS ({combine.format(g='draw,', t='_if_null')}), "
        "m AS (SELECT draw, a AS acc, x FROM p UNION ALL SELECT draw, b, x FROM p) "
        "SELECT draw, acc, max(x) AS x FROM m GROUP BY draw, acc").fetchnumpy()
    own = np.zeros(len(accounts))
    pooled = []
    for d in range(max(1, n_null)):
        mx = np.zeros(len(accounts))
        sel = np.asarray(null["draw"]) == d
        mx[np.asarray(null["acc"], dtype=np.int64)[sel]] = np.asarray(null["x"], dtype=np.float64)[sel]
        own = np.maximum(own, mx)
        pooled.append(mx[active])
    cuts["combined"] = max(1.0, float(np.quantile(np.concatenate(pooled), combined_quantile)))
    own_t = pa.table({"acc": np.arange(len(accounts), dtype=np.int64), "w": own})  # noqa: F841
    con.execute("CREATE OR REPLACE TEMP TABLE _if_own AS SELECT * FROM own_t")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _if_keep AS
        WITH p AS ({combine.format(g='', t='_if_pairs')})
        SELECT p.a, p.b, p.x FROM p JOIN _if_own o1 ON o1.acc = p.a JOIN _if_own o2 ON o2.acc = p.b
        WHERE p.x > {cuts['combined']!r} AND p.x > greatest(o1.w, o2.w)
        """
    )
    kept = con.execute(
        "SELECT k.a, k.b, any_value(k.x) AS x, sum(p.n) AS n, "
        + ", ".join(f"coalesce(sum(p.w) FILTER (p.type = '{t}'), 0) AS w_{t}" for t in LINK_TYPES)
        + " FROM _if_keep k JOIN _if_pairs p USING (a, b) GROUP BY k.a, k.b ORDER BY k.a, k.b").fetchnumpy()
    evidence = _evidence(con, n_evidence)
    n_cand = con.execute("SELECT count(DISTINCT (a, b)) FROM _if_pairs").fetchall()[0][0]
    drop_infra_tables(con, keep=("_if_acc", "_if_rel") if keep_tables else ())
    out = InfraLinks(
        accounts=accounts, a=np.asarray(kept["a"], dtype=np.int64), b=np.asarray(kept["b"], dtype=np.int64),
        weight=np.asarray(kept["x"], dtype=np.float64), n_shared=np.asarray(kept["n"], dtype=np.int64),
        by_type={t: np.asarray(kept[f"w_{t}"], dtype=np.float64) for t in LINK_TYPES}, cuts=cuts,
        evidence=evidence,
    )
    log.info("infra: %d of %d candidate pairs pass the null (cuts %s) in %.1f s", len(out.a), n_cand,
             {t: round(c, 4) for t, c in cuts.items()}, time.monotonic() - t0)
    return out


def _window(bucket: str | int) -> str:
    return datetime.fromtimestamp(int(bucket) * SYNC_SECONDS, UTC).strftime("%Y-%m-%d %H:%M")


def _evidence(con: duckdb.DuckDBPyConnection, n_evidence: int) -> dict[tuple[int, int], list[dict]]:
    """Per kept pair: its strongest shared resources per type (sync as one summary), and a shared
    key-creation date as supporting evidence."""
    rows = con.execute(
        f"""
        WITH sh AS (
            SELECT k.a, k.b, r1.type, r1.res, r1.k, 1.0 / (r1.k - 1) AS w,
                   row_number() OVER (PARTITION BY k.a, k.b, r1.type ORDER BY r1.k, r1.res) AS rk,
                   count(*) OVER (PARTITION BY k.a, k.b, r1.type) AS n_type,
                   min(try_cast(r1.res AS BIGINT)) OVER (PARTITION BY k.a, k.b, r1.type) AS first_w,
                   max(try_cast(r1.res AS BIGINT)) OVER (PARTITION BY k.a, k.b, r1.type) AS last_w,
                   round(sum(1.0 / (r1.k - 1)) OVER (PARTITION BY k.a, k.b, r1.type), 9) AS w_type
            FROM _if_keep k
            JOIN _if_rel r1 ON r1.acc = k.a
            JOIN _if_rel r2 ON r2.acc = k.b AND r2.type = r1.type AND r2.item = r1.item
            LEFT JOIN _if_caps c ON c.type = r1.type
            WHERE r1.k <= coalesce(c.cap, 0) OR r1.type = 'key'
        )
        SELECT a, b, type, res, k, w, n_type, first_w, last_w, w_type FROM sh
        WHERE (type = 'sync' AND rk = 1) OR (type <> 'sync' AND rk <= {int(n_evidence)})
        ORDER BY a, b, type, rk
        """
    ).fetchall()
    order = {t: i for i, t in enumerate((*LINK_TYPES, "key"))}
    out: dict[tuple[int, int], list[dict]] = {}
    for a, b, typ, res, k, w, n_type, first_w, last_w, w_type in rows:
        if typ == "sync":
            entry = {"type": "sync", "value": f"{_window(first_w)} to {_window(last_w)} UTC",
                     "n_windows": int(n_type), "weight": round(float(w_type), 4)}
        else:
            entry = {"type": typ, "value": res, "n_accounts": int(k)}
            if typ != "key":
                entry["weight"] = round(float(w), 4)
        out.setdefault((int(a), int(b)), []).append(entry)
    for ev in out.values():
        ev.sort(key=lambda e: order[e["type"]])
    return out


def describe_ring(con: duckdb.DuckDBPyConnection, members: np.ndarray, *, n: int = 5) -> RingInfrastructure:
    """The resources two or more of ``members`` (account indices, as in :class:`InfraLinks`) share,
    addresses, /24s, clients, payment fingerprints, key-creation dates, then the 10-minute
    windows where at least three members were active together. Resources most members share come
    first, then the most exclusive to the ring. Reads ``_if_rel`` when
    :func:`build_infra_links` kept it, else builds it (and leaves it for the next ring)."""
    mem = np.asarray(members, dtype=np.int64)
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_if_rel' AND temporary"
                         ).fetchall()[0][0]
    if not exists:
        if not has_infrastructure(con):
            return RingInfrastructure(len(mem), ())
        build_relations(con)
    con.register("_if_ring", pa.table({"acc": mem}))
    try:
        rows = con.execute(
            """
            SELECT r.type, r.res, any_value(r.k) AS k, count(*) AS m FROM _if_rel r JOIN _if_ring USING (acc)
            GROUP BY r.type, r.res HAVING count(*) >= CASE WHEN r.type = 'sync' THEN 3 ELSE 2 END
            ORDER BY CASE r.type WHEN 'sync' THEN 1 ELSE 0 END, count(*) DESC,
                     count(*)::DOUBLE / any_value(r.k) DESC, r.type, r.res
            """
        ).fetchall()
    finally:
        con.unregister("_if_ring")
    items = [{"type": t, "value": res, "n_accounts": int(k), "n_members": int(m)} for t, res, k, m in rows
             if t != "sync"][:n]
    sync = [(int(res), int(k), int(m)) for t, res, k, m in rows if t == "sync"]
    if sync:
        items.append({"type": "sync", "value": f"{_window(min(s[0] for s in sync))} to "
                                               f"{_window(max(s[0] for s in sync))} UTC",
                      "n_windows": len(sync), "n_members": round(float(np.mean([s[2] for s in sync])), 1),
                      "mean_accounts": round(float(np.mean([s[1] for s in sync])), 1)})
    return RingInfrastructure(len(mem), tuple(items))


def drop_infra_tables(con: duckdb.DuckDBPyConnection, keep: tuple[str, ...] = ()) -> None:
    """Drop the temporary tables of :func:`build_infra_links` (all but ``keep``)."""
    for t in ("_if_acc", "_if_rel", "_if_pairs", "_if_null", "_if_caps", "_if_cuts", "_if_own", "_if_keep",
              "_if_draw"):
        if t not in keep:
            con.execute(f"DROP TABLE IF EXISTS {t}")

