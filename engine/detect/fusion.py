"""Content and infrastructure links on one scale, and the infrastructure evidence the scorer reports.

:mod:`engine.detect.scoring` calls these helpers; the links themselves come from
:mod:`engine.detect.links` (shared rare content) and :mod:`engine.detect.infra` (shared addresses,
clients, payment fingerprints, synchronised windows).

**One scale.** Each channel is divided by its own chance cut, so 1.0 means "at the cut chance would
give": a content link weighs ``weight / content threshold`` (at least 1: a link kept by the
intense-template test counts as at the cut), an infrastructure link ``INFRA_WEIGHT * weight / combined
cut`` (its weight is already a sum of per-type ratios to their cuts, see the infra module). A pair
linked both ways adds the two (the weights written to ``account_links``).

**Rings come from content; infrastructure attaches and splits.** Louvain runs on content links only. Proxy
networks are rented by several operators at once, so infrastructure links bridge *different*
campaigns: Louvain over fused weights merged campaigns of a season into one ring (purity 0.14 on the
season profile at 100k exchanges). An account outside every ring then joins the ring it has the most
significant infrastructure links to, when that is at least ``MIN_INFRA_TIES`` of its members
(:func:`attach_by_infra`): a diluted account whose campaign prompts are too few to tie it by content,
sent through the campaign's proxies, joins its campaign's ring. The operator traces each part of a
ring holds as its own (cards, client builds, key bursts; not addresses) split it where content cannot
(:mod:`engine.detect.operators`).

**Infrastructure is supporting evidence** (``INFRA_WEIGHT`` = 0.5, the weight of the
``shared_infrastructure`` signal in the scorer's noisy-OR). Households, coworkers behind one office
NAT, a class on campus Wi-Fi and a team sharing one SDK build all share infrastructure honestly; an
organisation with 30 accounts on one office /24 is not a campaign. So:

- rings are communities of content links: infrastructure alone makes no ring;
- a ring member tied to the ring by infrastructure only (no content link to a member, not joined by
  its summed content ties) inherits the ring score times ``INFRA_WEIGHT``;
- the account signal scores ``1 - cut / strength`` (0 at the cut, 0.5 at twice it) and weighs 0.5, so
  alone it stays below the flag score 0.5 however strong; with any other signal past its cut, or as an
  infrastructure-only member of a strong content ring, it can tip an account over. That is the
  "very strong" case: the same proxies, client build and timing as a proven campaign.
"""

from __future__ import annotations

import numpy as np

from engine.detect.infra import InfraLinks, describe_ring
from engine.detect.links import LinkGraph

__all__ = ["INFRA_WEIGHT", "MIN_INFRA_TIES", "account_infra", "account_signal", "attach_by_infra", "content_tied",
           "infra_tied", "ring_density", "ring_infra", "written_links"]

INFRA_WEIGHT = 0.5
# Significant infrastructure links to members of one ring an outside account needs to join it.
MIN_INFRA_TIES = 2


def _content_scale(graph: LinkGraph) -> float:
    return float(graph.threshold) if np.isfinite(graph.threshold) and graph.threshold > 0 else 1.0


def _union(graph: LinkGraph, infra: InfraLinks, content_w: np.ndarray, infra_w: np.ndarray,
           infra_n: np.ndarray) -> LinkGraph:
    """The union of both link sets as a LinkGraph: weights summed, content channels and evidence kept,
    infra evidence added under ``"infrastructure"``."""
    n = len(graph.accounts)
    keys = np.concatenate([graph.a * n + graph.b, infra.a * n + infra.b])
    uniq, inv = np.unique(keys, return_inverse=True)
    m = len(uniq)
    w = np.zeros(m)
    shared = np.zeros(m, dtype=np.int64)
    wf, wt = np.zeros(m), np.zeros(m)
    nc = len(graph.a)
    np.add.at(w, inv, np.concatenate([content_w, infra_w]))
    np.add.at(shared, inv, np.concatenate([graph.n_shared, infra_n]))
    wf[inv[:nc]], wt[inv[:nc]] = graph.w_family, graph.w_template
    a, b = uniq // n, uniq % n
    evidence = dict(graph.evidence)
    for key, ev in infra.evidence.items():
        evidence[key] = {"families": [], "templates": [], **evidence.get(key, {}), "infrastructure": ev}
    return LinkGraph(graph.accounts, a.astype(np.int64), b.astype(np.int64), w, shared, wf, wt, graph.threshold,
                     graph.n_candidate_pairs, graph.intense_templates, evidence)


def written_links(graph: LinkGraph, infra: InfraLinks) -> LinkGraph:
    """The links the scorer writes to ``account_links``: content links with their weights, pairs linked
    by infrastructure only at their fused weight converted back to the content scale (times the content
    threshold), and infra evidence on every infra-linked pair."""
    if len(infra.a) == 0:
        return graph
    iw = INFRA_WEIGHT * infra.weight / infra.threshold * _content_scale(graph)
    # Content pairs keep their content weight: the infra part is in the evidence, not the weight.
    n = len(graph.accounts)
    in_content = np.isin(infra.a * n + infra.b, graph.a * n + graph.b)
    return _union(graph, infra, graph.weight, np.where(in_content, 0.0, iw), infra.n_shared)


def attach_by_infra(infra: InfraLinks, rings: list[np.ndarray], n_accounts: int,
                    exclude: np.ndarray | None = None) -> tuple[list[np.ndarray], dict[int, tuple[int, int]]]:
    """Rings with the outside accounts that have ``MIN_INFRA_TIES`` or more significant infrastructure links
    to one ring's members (the ring with most such links; ties to the earlier ring), and at least half of
    all their infrastructure links there: an account of a proxy network that several operators rent links
    to all of its users, and says nothing about which campaign it belongs to. Returns the rings and
    ``{account: (ring, links)}`` for the accounts attached. ``exclude``: accounts never attached."""
    if not rings or len(infra.a) == 0:
        return rings, {}
    ring_of = np.full(n_accounts, -1, dtype=np.int64)
    for r, mem in enumerate(rings):
        ring_of[mem] = r
    # Directed (outsider, ring) pairs of every infra link with one end in a ring and the other outside.
    ra, rb = ring_of[infra.a], ring_of[infra.b]
    out_acc = np.concatenate([infra.a[(ra < 0) & (rb >= 0)], infra.b[(rb < 0) & (ra >= 0)]])
    to_ring = np.concatenate([rb[(ra < 0) & (rb >= 0)], ra[(rb < 0) & (ra >= 0)]])
    if exclude is not None and len(out_acc):
        keep = ~exclude[out_acc]
        out_acc, to_ring = out_acc[keep], to_ring[keep]
    if len(out_acc) == 0:
        return rings, {}
    pairs, counts = np.unique(out_acc * len(rings) + to_ring, return_counts=True)
    acc, ring = pairs // len(rings), pairs % len(rings)
    # Per account its best ring: most links, then the lower ring id (np.lexsort: last key first).
    order = np.lexsort((ring, -counts, acc))
    acc, ring, counts = acc[order], ring[order], counts[order]
    first = np.r_[True, acc[1:] != acc[:-1]]
    degree = np.bincount(np.concatenate([infra.a, infra.b]), minlength=n_accounts)
    attached = {int(a): (int(r), int(c)) for a, r, c in zip(acc[first], ring[first], counts[first], strict=True)
                if c >= MIN_INFRA_TIES and 2 * c >= degree[a]}
    grown = [np.array(sorted(set(mem.tolist()) | {a for a, (r2, _) in attached.items() if r2 == r}), dtype=np.int64)
             for r, mem in enumerate(rings)]
    return grown, attached


def content_tied(graph: LinkGraph, infra: InfraLinks, rings: list[np.ndarray], joined: dict) -> np.ndarray:
    """Per account: in a ring and tied to it by content (a content link to a member, or joined by its
    summed content ties). Ring members without are there through infrastructure only. Without infra
    links every account counts as tied (the rings are content rings)."""
    if len(infra.a) == 0:
        return np.ones(len(graph.accounts), dtype=bool)
    out = np.zeros(len(graph.accounts), dtype=bool)
    for mem in rings:
        inside = np.isin(graph.a, mem) & np.isin(graph.b, mem)
        out[graph.a[inside]] = True
        out[graph.b[inside]] = True
    out[list(joined)] = True
    return out


def infra_tied(infra: InfraLinks, rings: list[np.ndarray], n_accounts: int) -> np.ndarray:
    """Accounts with a significant infrastructure link to another account of their own ring."""
    ring_of = np.full(n_accounts, -1, dtype=np.int64)
    for r, mem in enumerate(rings):
        ring_of[mem] = r
    out = np.zeros(n_accounts, dtype=bool)
    if len(infra.a):
        same = (ring_of[infra.a] >= 0) & (ring_of[infra.a] == ring_of[infra.b])
        out[infra.a[same]] = True
        out[infra.b[same]] = True
    return out


def ring_density(graph: LinkGraph, infra: InfraLinks, mem: np.ndarray) -> float:
    """Linked pairs over possible pairs; a pair linked by infrastructure only counts ``INFRA_WEIGHT``."""
    n = len(graph.accounts)
    c = graph.a[np.isin(graph.a, mem) & np.isin(graph.b, mem)] * n + \
        graph.b[np.isin(graph.a, mem) & np.isin(graph.b, mem)]
    i_in = np.isin(infra.a, mem) & np.isin(infra.b, mem)
    i_only = np.setdiff1d(infra.a[i_in] * n + infra.b[i_in], c)
    n_pairs = len(mem) * (len(mem) - 1) / 2
    return float((len(c) + INFRA_WEIGHT * len(i_only)) / n_pairs) if n_pairs else 0.0


def account_infra(infra: InfraLinks) -> tuple[np.ndarray, np.ndarray, dict[int, list[int]]]:
    """Per account: infrastructure strength (sum of its links' weights over the combined cut, so each
    link adds more than 1), its score ``1 - 1 / strength`` (0 without links), and its link indices,
    strongest first."""
    n = len(infra.accounts)
    strength = np.zeros(n)
    x = infra.weight / infra.threshold
    np.add.at(strength, infra.a, x)
    np.add.at(strength, infra.b, x)
    with np.errstate(divide="ignore"):
        score = np.where(strength > 1.0, 1.0 - 1.0 / np.maximum(strength, 1e-12), 0.0)
    partners: dict[int, list[int]] = {}
    for j in np.argsort(-infra.weight, kind="stable").tolist():
        partners.setdefault(int(infra.a[j]), []).append(j)
        partners.setdefault(int(infra.b[j]), []).append(j)
    return strength, score, partners


def account_signal(infra: InfraLinks, i: int, strength: float, links: list[int], n: int = 3) -> tuple[str, list]:
    """Detail line and examples (the strongest links with their evidence) of account ``i``'s
    ``shared_infrastructure`` signal."""
    examples = []
    types: set[str] = set()
    for j in links:
        other = int(infra.b[j]) if int(infra.a[j]) == i else int(infra.a[j])
        ev = infra.evidence.get((int(infra.a[j]), int(infra.b[j])), [])
        types.update(e["type"] for e in ev if e["type"] != "key")
        if len(examples) < n:
            examples.append({"other_account": infra.accounts[other],
                             "weight": round(float(infra.weight[j]), 4), "infrastructure": ev})
    kinds = ", ".join(t for t in ("ip", "subnet", "client", "payment", "sync") if t in types)
    detail = (f"shares infrastructure ({kinds}) with {len(links)} accounts beyond chance "
              f"(strength {strength:.2f}; each link past the combined chance cut "
              f"{infra.threshold:.2f}); supporting evidence only")
    return detail, examples


def ring_infra(con, infra: InfraLinks, mem: np.ndarray) -> tuple[float, str, list[dict]] | None:
    """The ring's ``shared_infrastructure`` signal: share of member pairs linked by infrastructure, the
    readable description of what they share (:func:`engine.detect.infra.describe_ring`) and its items.
    None when the workspace has no infrastructure links at all."""
    if not infra.cuts:
        return None
    i_in = np.isin(infra.a, mem) & np.isin(infra.b, mem)
    n_pairs = len(mem) * (len(mem) - 1) / 2
    share = float(i_in.sum() / n_pairs) if n_pairs else 0.0
    desc = describe_ring(con, mem)
    detail = (f"{int(i_in.sum())} of {int(n_pairs)} member pairs share infrastructure beyond chance"
              + (f": {desc.text}" if desc.items else ""))
    return share, detail, list(desc.items)

