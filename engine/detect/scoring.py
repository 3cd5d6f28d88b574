"""Account and ring scores with their evidence: the detection entry point.

The module stays whole past ~500 lines: every signal of an account and a ring is scored and worded here
from the same arrays in one pass, and the noisy-OR needs all of them side by side.

Order of work: (1) link accounts by shared rare content and cut the links at the data's own null
(:mod:`engine.detect.links`), and by shared infrastructure, each type at its own null
(:mod:`engine.detect.infra`); (2) Louvain rings of >= 3 accounts over both (one scale and the rule that a
ring needs content links: :mod:`engine.detect.fusion`), then outside accounts whose summed
ties to one ring beat the null's chance ties join it (:mod:`engine.detect.rings`); (3) per-account measurements
(:mod:`engine.detect.signals`, :mod:`engine.detect.elicitation`) with cut-offs taken from the
accounts outside rings; (4) scores.

**Account score** = noisy-OR of its signals' scores, each weighted by how much it means alone:
``1 - prod(1 - w_i * s_i)``. Shared rare content and ring membership are direct evidence (w = 1);
templated share and copied share (0.8: most of the account's exchanges are near-copies of other
accounts' prompts, however popular) and elicitation share (0.7) are strong but have organic uses (an
app, a student); topic coverage (0.4) only supports, and so does shared infrastructure (0.5: never
enough alone, see :mod:`engine.detect.fusion`). Each signal score is 0 up to its background cut-off
(99th percentile of non-ring accounts, or the null threshold for links), so an account with no
shared content and ordinary behaviour scores 0. An account is *flagged* at score >= 0.5, which
needs one signal clearly past its cut-off (a value just past the 99th percentile scores near 0).

**Ring score** = noisy-OR of: link structure ``0.6 * density`` (every ring link already passed the
null; density = linked pairs / possible pairs, so a clique alone reaches 0.6 and a loose chain
less), and with weight 0.5 each, the ring's timing synchrony, its members' mean templated share and
mean elicitation share past their cut-offs. Members inherit the ring score as their ``ring`` signal.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace

import duckdb
import numpy as np
import pyarrow as pa

from engine.config import DEFAULT_DETECT, DEFAULT_THRESHOLD, FLAG_SCORE, DetectSettings
from engine.detect import fusion as fu
from engine.detect import infra as ifr
from engine.detect import links as lk
from engine.detect import operators as ops
from engine.detect import rings as rg
from engine.detect import signals as sg
from engine.detect import watchlist as wlist
from engine.detect.copy_network import STEPS as CN_STEPS
from engine.detect.copy_network import copy_network, reference_cut, ring_ties, tail_score, template_ties
from engine.detect.crowding import family_crowds
from engine.detect.elicitation import elicitation_table, score_elicitation

log = logging.getLogger(__name__)

__all__ = ["FLAG_SCORE", "WEIGHTS", "score_accounts"]

WEIGHTS = {
    "ring": 1.0,
    "shared_families": 1.0,
    "shared_templates": 1.0,
    "templated_share": 0.8,
    "copied_share": 0.8,
    # Group evidence read on a background percentile, like the shares: strong, not direct.
    "copy_network": 0.8,
    "elicitation": 0.7,
    "coverage": 0.4,
    # Supporting evidence only: alone it cannot reach the flag score (see engine.detect.fusion).
    "shared_infrastructure": fu.INFRA_WEIGHT,
    # Holds a ring's own card or client build, most of whose holders are flagged or in rings
    # (engine.detect.operators): the same kind of supporting evidence.
    "operator_traces": fu.INFRA_WEIGHT,
    # An analyst confirmed this content: direct evidence (engine.detect.watchlist).
    "watchlist": 1.0,
    # Says what an analyst's benign mark took out of the evidence; it scores nothing.
    "benign_content": 0.0,
}


def _signal(name: str, value: float, background: float, score: float, detail: str,
            examples: list[dict] | None = None) -> dict:
    """A dict with exactly the fields of :class:`engine.models.Signal`."""
    return {"name": name, "value": round(float(value), 6), "background": round(float(background), 6),
            "score": round(float(np.clip(score, 0.0, 1.0)), 6), "detail": detail,
            "examples": list(examples or [])}


def _noisy_or(sigs: list[dict]) -> float:
    p = 1.0
    for s in sigs:
        p *= 1.0 - WEIGHTS.get(s["name"], 0.5) * s["score"]
    return float(np.clip(1.0 - p, 0.0, 1.0))


def score_accounts(
    con: duckdb.DuckDBPyConnection,
    ids: np.ndarray,
    vecs: np.ndarray,
    encoder,
    *,
    progress: Callable[[str, int, int | None], None] | None = None,
    seed: int = 0,
    index=None,
    crowd_radius: float = DEFAULT_THRESHOLD,
    settings: DetectSettings = DEFAULT_DETECT,
) -> dict:
    """Recompute ``account_links``, ``rings`` and ``account_scores`` (delete, then insert).

    Runs inside the caller's transaction. ``ids`` int64 (n,) sorted prompt ids and ``vecs``
    float32 or float16 (n, dim) L2-normalised vectors of all prompts; ``encoder.encode(list[str])`` embeds
    the elicitation exemplars; ``index`` (optional) is the workspace's FAISS index over ``vecs``,
    reused for the family crowds; ``crowd_radius`` the encoder's who-else threshold, the radius of a
    family's crowd (each encoder has its own cosine scale); ``settings`` which mechanisms run. Returns summary figures: counts, thresholds and seconds per stage.
    """
    prog = progress or (lambda stage, done, total: None)
    stage: dict[str, float] = {}
    ids = np.asarray(ids, dtype=np.int64)

    t0 = time.monotonic()
    # With sharer weights the crowd is weighed account by account (who it is), else counted.
    crowd = family_crowds(con, ids, vecs, crowd_radius, index=index, members=settings.sharer_weights)
    stage["crowding"] = time.monotonic() - t0
    # Analysts' confirmed and benign marks (None without any: the scan is then exactly what it was).
    wl = wlist.load(con)
    suppress = wl.table(wlist.SUPPRESS) if wl is not None and wl.count(wlist.SUPPRESS) else None
    t0 = time.monotonic()
    graph = lk.build_links(con, seed=seed, keep_tables=True, sharer_weights=settings.sharer_weights,
                           large_items=settings.large_items, suppress=suppress,
                           **({"crowd_members": crowd} if settings.sharer_weights else {"family_crowd": crowd}))
    # Single-purpose accounts (integrations): content they share only with each other is no evidence.
    single = (sg.single_purpose(con, graph.accounts) if settings.single_purpose
              else np.zeros(len(graph.accounts), dtype=bool))
    graph = lk.drop_links(graph, single[graph.a] & single[graph.b])
    stage["links"] = time.monotonic() - t0
    t0 = time.monotonic()
    infra = ifr.build_infra_links(con, seed=seed, keep_tables=True, enabled=settings.infra_links)
    stage["infra"] = time.monotonic() - t0
    prog("links", 1, 5)

    t0 = time.monotonic()
    n_acc = len(graph.accounts)
    try:
        # Rings are content communities; infrastructure only attaches outside accounts to them
        # (engine.detect.fusion: proxy networks bridge different campaigns).
        expansion = rg.expand_rings(con, rg.find_rings(graph, seed=seed), n_acc, seed=seed,
                                    sharer_weights=settings.sharer_weights, familywise=settings.familywise_joins,
                                    exclude=single)
        grown, attached = fu.attach_by_infra(infra, expansion.rings, n_acc, exclude=single)
        expansion = replace(expansion, rings=grown, attached=attached)
        if settings.ring_guard:
            # Members tied to their ring by a significant infrastructure link passed that link's own null;
            # the guard asks the others whether their shared content is more than a neighbour's handful.
            expansion = rg.guard_rings(con, expansion, n_acc, exempt=fu.infra_tied(infra, expansion.rings, n_acc))
    finally:
        lk.drop_link_tables(con)
    ring_members = expansion.rings
    tied = fu.content_tied(graph, infra, ring_members, expansion.joined)
    ring_of = np.full(n_acc, -1, dtype=np.int64)
    for r, mem in enumerate(ring_members):
        ring_of[mem] = r
    stage["rings"] = time.monotonic() - t0
    prog("rings", 2, 5)

    t0 = time.monotonic()
    el = score_elicitation(con, ids, vecs, encoder)
    # Registered under a name so helpers in other frames can join it (DuckDB's replacement scan
    # only sees the calling frame's variables).
    con.register("_sc_elicit", elicitation_table(el, ids))
    if settings.specific_templates:
        con.register("_sc_specific", pa.table({"template_id": lk.specific_templates(con)}))
    if suppress is not None:
        con.register("_sc_suppressed", suppress)
    shares = sg.account_shares(con, "_sc_elicit", "_sc_specific" if settings.specific_templates else None,
                               "_sc_suppressed" if suppress is not None else None)
    if settings.specific_templates:
        con.unregister("_sc_specific")
    net = (copy_network(con, graph.accounts, shares["n_ex"], exclude=single, seed=seed,
                        suppressed="_sc_suppressed" if suppress is not None else None)
           if settings.copy_network else None)
    assert tuple(shares["account_id"]) == graph.accounts  # both ordered by account id in DuckDB
    cov = sg.coverage(con, ids, vecs, seed=seed)
    stage["signals"] = time.monotonic() - t0
    prog("signals", 3, 5)

    t0 = time.monotonic()
    bg = ring_of < 0
    cut_t = sg.background_cut(shares["templated_share"], bg)
    cut_e = sg.background_cut(shares["elicit_share"], bg)
    cut_c = sg.coverage_cut(cov["evenness"], cov["n_prompts"], bg)
    # A single-purpose account's shares are ~1 by what it is (one template): no evidence of copying.
    s_t = np.where(single, 0.0, sg.exceed_share(shares["templated_share"], cut_t))
    # Copied share: most of what the account sends is a near-copy of what other accounts send. Links
    # discount a family by its crowd (a viral prompt says nothing about who knows whom), so accounts
    # pasting from one big shared question bank link weakly to each other; what sets them apart from
    # a viral prompt's senders is that copies are nearly all they send.
    cut_cp = sg.background_cut(shares["copied_share"], bg)
    s_cp = np.where(single, 0.0, sg.exceed_share(shares["copied_share"], cut_cp))
    s_e_share = sg.exceed_share(shares["elicit_share"], cut_e)
    # Copy-network standing against ordinary accounts' (engine.detect.copy_network.reference_cut).
    cut_cn = reference_cut(net.standing, bg, net.null_cut) if net is not None else 0.0
    if cut_cn > 0:
        s_cn = np.where(single, 0.0, tail_score(net.standing, bg, cut_cn))
    else:
        s_cn = np.zeros(n_acc)
    # Accounts past that cut-off whose copy network points at one ring join it; the ring's link figures
    # (density, timing, example links) stay those of its link-formed core.
    net_joined = ring_ties(con, net, ring_of, (s_cn > 0) & (ring_of < 0) & ~single) if net is not None else {}
    core_members = ring_members
    ring_members = _add_joins(ring_members, ring_of, tied, {i: r for i, (r, _, _) in net_joined.items()})
    # Consistency: the account's mean exemplar similarity past the background's 99th percentile, scaled
    # to reach 1 at the per-prompt threshold (where every prompt of the account would be flagged).
    cut_m = sg.background_cut(shares["elicit_mean"], bg)
    span_m = max(el.threshold - cut_m, 1e-6)
    s_e_mean = np.clip((shares["elicit_mean"] - cut_m) / span_m, 0.0, 1.0) * (el.threshold > cut_m)
    s_e = np.maximum(s_e_share, s_e_mean)
    s_c = np.clip((cov["evenness"] - cut_c) / np.maximum(1.0 - cut_c, 1e-9), 0.0, 1.0)
    # Link strength per account and channel: sum of its significant links' weights.
    str_f = np.zeros(n_acc)
    str_t = np.zeros(n_acc)
    np.add.at(str_f, graph.a, graph.w_family)
    np.add.at(str_f, graph.b, graph.w_family)
    np.add.at(str_t, graph.a, graph.w_template)
    np.add.at(str_t, graph.b, graph.w_template)
    has_link = np.zeros(n_acc, dtype=bool)
    has_link[graph.a] = True
    has_link[graph.b] = True
    intense_acc = _intense_accounts(graph)
    thr = graph.threshold if np.isfinite(graph.threshold) else 0.0
    s_f = np.where(has_link, sg.exceed_ratio(str_f, thr), 0.0)
    s_tl = np.where(has_link, sg.exceed_ratio(str_t, thr), 0.0)
    # Intense-template members' links pass by the item test, not the pair cut: their template
    # evidence scores as strongly as a link at twice the cut.
    s_tl = np.where(intense_acc, np.maximum(s_tl, 0.5), s_tl)

    # Rings split by operator, then accounts holding a ring's own card or client build join it
    # (engine.detect.operators). Before any ring score: each part is scored as a ring of its own.
    content = (s_f > 0) | (s_tl > 0) | (s_t > 0) | (s_cp > 0) | (s_cn > 0) | (s_e > 0)
    op_joined: dict[int, tuple[int, dict]] = {}
    op_resources: list[list[dict]] = [[] for _ in ring_members]
    op_from = [0 for _ in ring_members]  # accounts of the content ring a ring was cut from (0: not cut)
    if settings.operator_split and ring_members:
        sizes = [len(m) for m in ring_members]
        split = ops.split_by_operator(con, ring_members, core_members, n_acc, (graph.a, graph.b), seed=seed)
        ring_members, core_members, op_resources = split.rings, split.cores, split.resources
        op_from = [sizes[o] if cut else 0 for o, cut in zip(split.origin, split.cut, strict=True)]
        ring_of[:] = -1
        for r, mem in enumerate(ring_members):
            ring_of[mem] = r
        # Any account outside the rings may hold an operator's traces; one past a content cut-off is the
        # operator's by its content too (tied), the others are tied by infrastructure only.
        op_joined = ops.join_by_operator(con, split, (ring_of < 0) & ~single, content | (ring_of >= 0))
        ring_members = _add_joins(ring_members, ring_of, tied, {i: r for i, (r, _) in op_joined.items()},
                                  by_content=content)
    if settings.single_purpose and ring_members:
        # A ring with fewer than MIN_RING members that are not single-purpose is a ring of integrations: what
        # they share with each other is no evidence (sg.single_purpose), and the SDK build they all run is
        # no operator's harness (at 10M on the season profile, one integration just under the volume the
        # rule needs linked 80 others of its template into a content ring, which the operator split cut
        # into three by their SDK strings). It is dissolved; its members keep their own signals.
        keep = [int((~single[mem]).sum()) >= rg.MIN_RING for mem in ring_members]
        if not all(keep):
            new_id = np.cumsum(keep) - 1
            ring_members, core_members, op_resources, op_from = (
                [x for x, k in zip(seq, keep, strict=True) if k]
                for seq in (ring_members, core_members, op_resources, op_from))
            ring_of[:] = -1
            for r, mem in enumerate(ring_members):
                ring_of[mem] = r
            op_joined = {i: (int(new_id[r]), d) for i, (r, d) in op_joined.items() if keep[r]}
            log.info("rings: %d rings of integrations dissolved", keep.count(False))
    # Accounts past a content cut-off whose shared templates' other users are mostly one ring's join it
    # (thin sweep and low-and-slow accounts: their fillings are each their own family).
    tpl_joined: dict[int, tuple[int, float, int]] = {}
    if settings.template_joins and ring_members:
        tpl_joined = template_ties(con, graph.accounts, ring_of, content & (ring_of < 0) & ~single,
                                   suppressed="_sc_suppressed" if suppress is not None else None)
        ring_members = _add_joins(ring_members, ring_of, tied, {i: r for i, (r, _, _) in tpl_joined.items()})

    partners = _partners(graph)
    examples_t = _template_examples(con, shares["n_templated"] > 0, "_sc_suppressed" if suppress is not None else None)
    if suppress is not None:
        con.unregister("_sc_suppressed")
    watched = wlist.account_hits(con, wl, wlist.WATCH) if wl is not None else {}
    benign = wlist.account_hits(con, wl, wlist.SUPPRESS) if wl is not None else {}
    index_of = {a: i for i, a in enumerate(graph.accounts)}
    s_w = np.zeros(n_acc)
    for acc, (n, _, _) in watched.items():
        i = index_of[acc]
        s_w[i] = n / (float(shares["n_ex"][i]) + wlist.WATCH_PRIOR)
    has_benign = np.zeros(n_acc, dtype=bool)
    has_benign[[index_of[a] for a in benign]] = True
    examples_e = _elicit_examples(con, shares["n_elicit"] > 0)

    # Rings first: members inherit the ring score.
    ring_rows = []
    ring_score = np.zeros(len(ring_members))
    for r, mem in enumerate(ring_members):
        # A part of a split ring whose members all joined by copy network is measured on all of them.
        core = core_members[r] if len(core_members[r]) >= 2 else mem
        names = [graph.accounts[i] for i in core]
        inside = np.isin(graph.a, core) & np.isin(graph.b, core)
        density = fu.ring_density(graph, infra, core)
        tim = sg.ring_timing(con, names, seed=seed)
        s_tim = float(sg.exceed_ratio(np.array([tim["value"]]), tim["background"])[0]) \
            if tim["value"] > 0 else 0.0
        mt = float(shares["templated_share"][mem].mean())
        me = float(shares["elicit_share"][mem].mean())
        wf, wt = float(graph.w_family[inside].sum()), float(graph.w_template[inside].sum())
        top_links = np.flatnonzero(inside)[np.argsort(-graph.weight[inside], kind="stable")[:3]]
        link_ex = [
            {"account_a": graph.accounts[graph.a[j]], "account_b": graph.accounts[graph.b[j]],
             "weight": round(float(graph.weight[j]), 4),
             **graph.evidence.get((int(graph.a[j]), int(graph.b[j])), {})}
            for j in top_links
        ]
        sigs = [
            # A part cut out of a content ring by operator may hold no link of its own (they ran across parts).
            _signal("shared_families" if wf >= wt else "shared_templates",
                    float(graph.weight[inside].mean()) if inside.any() else 0.0,
                    thr, 0.6 * density / WEIGHTS["ring"],
                    f"{int(inside.sum())} significant links among {len(mem)} accounts "
                    f"(density {density:.2f}; family weight {wf:.2f}, template weight {wt:.2f})", link_ex),
            _signal("timing", tim["value"], tim["background"], s_tim,
                    f"{tim['value']:.0%} of exchanges in hours with >= 3 members active "
                    f"(shifted timelines: {tim['expected']:.0%})", tim["busiest_hours"]),
            _signal("templated_share", mt, cut_t, float(sg.exceed_share(np.array([mt]), cut_t)[0]),
                    f"members' mean shared-template share {mt:.2f}"),
            _signal("elicitation", me, cut_e, float(sg.exceed_share(np.array([me]), cut_e)[0]),
                    f"members' mean reasoning-elicitation share {me:.2f}"),
        ]
        ring_inf = fu.ring_infra(con, infra, mem)
        if ring_inf is not None:
            sigs.append(_signal("shared_infrastructure", ring_inf[0], 0.0, ring_inf[0], ring_inf[1], ring_inf[2]))
        p = 1 - sigs[0]["score"]
        for s in sigs[1:]:
            p *= 1 - 0.5 * s["score"]
        score = float(np.clip(1 - p, 0, 1))
        ring_score[r] = score
        n_ex = int(shares["n_ex"][mem].sum())
        summary = (f"{len(mem)} accounts, {n_ex} exchanges; {int(inside.sum())} links over shared "
                   f"{'families' if wf >= wt else 'templates'}; timing sync {tim['value']:.0%}")
        if ring_inf is not None and ring_inf[0] > 0:
            summary += f"; {ring_inf[0]:.0%} of member pairs share infrastructure"
        if len(mem) > len(core):
            summary += f"; {len(mem) - len(core)} joined by their copy network, templates or operator traces"
        if op_from[r] and op_resources[r]:
            own = ", ".join(f"{d['type']} held by {d['n_members']} members of its {d['n_accounts']} accounts"
                            for d in op_resources[r][:2])
            summary += f"; one operator's part of a content ring of {op_from[r]} accounts ({own})"
        elif op_from[r]:
            summary += (f"; the part of a content ring of {op_from[r]} accounts that holds none of its operators' "
                        "own traces")
        sigs = [s for s in sigs if s["score"] > 0] or sigs[:1]
        ring_rows.append((r, score, len(mem), n_ex, json.dumps(sigs, ensure_ascii=False), summary))

    ifr.drop_infra_tables(con)
    str_i, s_i, i_links = fu.account_infra(infra)
    # Only accounts with some signal past its cut-off need Python work; the rest score 0.
    active = ((ring_of >= 0) | (s_f > 0) | (s_tl > 0) | (s_t > 0) | (s_cp > 0) | (s_cn > 0) | (s_e > 0) | (s_c > 0)
              | (s_i > 0))
    if wl is not None:
        active |= (s_w > 0) | has_benign
    # Accounts flagged by the mean similarity alone have no prompt past the cut to show: their closest.
    by_mean = [graph.accounts[i] for i in np.flatnonzero((s_e > 0) & (s_e_share < s_e_mean)).tolist()]
    closest_e = _top_elicit(con, [a for a in by_mean if not examples_e.get(a)])
    examples_cn = _network_examples(con, net, s_cn > 0, cut_cn) if net is not None else {}
    acc_rows = []
    for i in np.flatnonzero(active).tolist():
        acc = graph.accounts[i]
        sigs = []
        if ring_of[i] >= 0:
            r = int(ring_of[i])
            joined = expansion.joined.get(i)
            how = (f"; joined by its summed ties to {joined[2]} members (weight {joined[1]:.2f}, "
                   f"chance cut {expansion.threshold:.2f})" if joined else "")
            if i in net_joined:
                _, share, nf = net_joined[i]
                how += (f"; joined by its copy network: {share:.0%} of its shared exchanges' other senders, "
                        f"weighted, are members ({nf} families)")
            if i in tpl_joined:
                _, share, nt = tpl_joined[i]
                how += (f"; joined by its shared templates: {share:.0%} of its templated exchanges' other users, "
                        f"weighted, are members ({nt} template{'s' if nt != 1 else ''})")
            if i in op_joined:
                d = op_joined[i][1]
                how += (f"; joined by its operator traces: it holds a {d['type']} the ring holds as its own, "
                        f"{d['n_members']} members of its {d['n_accounts']} accounts")
            if i in expansion.shares:
                x, nx, tail = expansion.shares[i]
                how += (f"; {x} of its {nx} prompts are ring content (chance for a ring neighbour "
                        f"{tail:.1e})")
            # Tied to the ring by infrastructure only: it inherits the ring score at infrastructure's weight.
            rs = ring_score[r] * (1.0 if tied[i] else fu.INFRA_WEIGHT)
            how += "" if tied[i] else "; tied to it by shared infrastructure only"
            sigs.append(_signal("ring", rs, FLAG_SCORE, rs,
                                f"member of ring {r} ({len(ring_members[r])} accounts){how}",
                                [{"ring_id": r, "accounts": [graph.accounts[j] for j in ring_members[r][:10]]}]))
        if i in op_joined:
            r, d = op_joined[i]
            sigs.append(_signal("operator_traces", d["suspect_share"], ops.JOIN_SHARE, d["suspect_share"],
                                f"holds a {d['type']} that ring {r} holds as its own: {d['suspect_share']:.0%} of the "
                                f"{d['n_accounts']} accounts holding it are flagged or in rings", [{"ring_id": r, **d}]))
        if s_f[i] > 0:
            sigs.append(_signal("shared_families", str_f[i], thr, s_f[i],
                                f"rare near-copy families shared with {len(partners.get(i, []))} accounts",
                                _link_examples(graph, partners.get(i, []), i, "families")))
        if s_tl[i] > 0:
            sigs.append(_signal("shared_templates", str_t[i], thr, s_tl[i],
                                "templates split with other accounts"
                                + (" (intense member of a significant template)" if intense_acc[i] else ""),
                                _link_examples(graph, partners.get(i, []), i, "templates")))
        if s_i[i] > 0:
            detail, ex = fu.account_signal(infra, i, float(str_i[i]), i_links.get(i, []))
            sigs.append(_signal("shared_infrastructure", str_i[i], 1.0, s_i[i], detail, ex))
        if s_t[i] > 0:
            sigs.append(_signal("templated_share", shares["templated_share"][i], cut_t, s_t[i],
                                f"{int(shares['n_templated'][i])} of {int(shares['n_ex'][i])} exchanges use "
                                "templates shared with other accounts", examples_t.get(acc, [])))
        if s_cp[i] > 0:
            sigs.append(_signal("copied_share", shares["copied_share"][i], cut_cp, s_cp[i],
                                f"{int(shares['n_copied'][i])} of {int(shares['n_ex'][i])} exchanges are near-copies "
                                "of prompts other accounts sent"))
        if s_cn[i] > 0:
            sigs.append(_signal("copy_network", net.standing[i], cut_cn, s_cn[i],
                                f"{int(shares['n_copied'][i])} of {int(shares['n_ex'][i])} exchanges are near-copies other "
                                f"accounts also sent ({int(net.n_partners[i])} senders, counted per family); weighing each "
                                f"by how much of its other senders' traffic is shared, {CN_STEPS} hops out, its standing "
                                f"is {net.standing[i] / cut_cn:.2f}x the cut-off (ordinary accounts' 99th percentile)",
                                examples_cn.get(i, [])))
        if s_e[i] > 0 and s_e_share[i] >= s_e_mean[i]:
            sigs.append(_signal("elicitation", shares["elicit_share"][i], cut_e, s_e[i],
                                f"{int(shares['n_elicit'][i])} of {int(shares['n_ex'][i])} exchanges ask for "
                                "the full chain of thought", examples_e.get(acc, [])))
        elif s_e[i] > 0:
            sigs.append(_signal("elicitation", shares["elicit_mean"][i], cut_m, s_e[i],
                                f"its prompts average cosine {shares['elicit_mean'][i]:.2f} to the reasoning-"
                                f"elicitation exemplars (99th percentile of accounts {cut_m:.2f}, per-prompt "
                                f"threshold {el.threshold:.2f}): consistently worded to draw out the reasoning",
                                examples_e.get(acc, []) or closest_e.get(acc, [])))
        if s_c[i] > 0:
            sigs.append(_signal("coverage", cov["evenness"][i], cut_c[i], s_c[i],
                                f"prompts spread over {int(cov['n_clusters_hit'][i])} of {int(cov['k'])} topic "
                                f"clusters (evenness {cov['evenness'][i]:.2f}, volume-matched cut {cut_c[i]:.2f})"))
        if s_w[i] > 0:
            n, entry, ex = watched[acc]
            sigs.append(_signal("watchlist", s_w[i], 0.0, s_w[i],
                                f"{n} of {int(shares['n_ex'][i])} exchanges are watched content: {entry.evidence}",
                                ex))
        if has_benign[i]:
            n, entry, ex = benign[acc]
            sigs.append(_signal("benign_content", n / float(shares["n_ex"][i]), 0.0, 0.0,
                                f"{n} of {int(shares['n_ex'][i])} exchanges not counted: {entry.evidence}", ex))
        sigs.sort(key=lambda s: -WEIGHTS.get(s["name"], 0.5) * s["score"])
        score = _noisy_or(sigs)
        acc_rows.append((acc, score, int(ring_of[i]) if ring_of[i] >= 0 else None,
                         sigs[0]["name"] if sigs else None, json.dumps(sigs, ensure_ascii=False)))

    con.unregister("_sc_elicit")
    _write(con, fu.written_links(graph, infra), ring_rows, acc_rows, [graph.accounts[i] for i in np.flatnonzero(~active).tolist()])
    wlist.write(con, wl)
    stage["scores"] = time.monotonic() - t0
    prog("scores", 5, 5)
    n_flag = sum(1 for r in acc_rows if r[1] >= FLAG_SCORE)
    out = {
        "n_links": int(len(graph.a)), "n_candidate_pairs": graph.n_candidate_pairs,
        "n_infra_links": int(len(infra.a)),
        "n_rings": len(ring_rows), "n_flagged": n_flag, "n_accounts": n_acc,
        "thresholds": {"link_weight": thr, "templated_share": cut_t, "copied_share": cut_cp,
                       "copy_network": cut_cn,
                       "elicitation_share": cut_e,
                       "elicitation_mean": cut_m,
                       "elicitation_similarity": el.threshold, "flag_score": FLAG_SCORE,
                       "intense_templates": len(graph.intense_templates),
                       "infrastructure": {t: round(c, 6) for t, c in infra.cuts.items()}},
        "stage_seconds": {k: round(v, 3) for k, v in stage.items()},
    }
    if wl is not None:
        out["watchlist"] = {"watched_items": wl.count(wlist.WATCH), "suppressed_items": wl.count(wlist.SUPPRESS),
                            "watched_accounts": len(watched), "benign_content_accounts": len(benign)}
    log.info("scoring: %d links, %d rings, %d of %d accounts flagged", out["n_links"], out["n_rings"], n_flag, n_acc)
    return out


def _top_elicit(con: duckdb.DuckDBPyConnection, accounts: list[str], n: int = 3) -> dict[str, list[dict]]:
    """Each account's prompts most similar to the elicitation exemplars (none of them past the cut).

    One query for all the accounts: a query per account cost ~17 ms each, 26 s for the 1,500 accounts
    of a million exchanges.
    """
    if not accounts:
        return {}
    con.register("_sc_top_acc", pa.table({"account_id": accounts}))
    try:
        rows = con.execute(
            f"""
            WITH x AS (
                SELECT DISTINCT e.account_id, e.prompt_id, el.elicit_sim FROM exchanges e
                JOIN _sc_top_acc a USING (account_id) JOIN _sc_elicit el USING (prompt_id)
            ), r AS (
                SELECT *, row_number() OVER (PARTITION BY account_id ORDER BY elicit_sim DESC, prompt_id) AS rk
                FROM x
            )
            SELECT r.account_id, r.prompt_id, r.elicit_sim, left(p.text, 200)
            FROM r JOIN prompts p USING (prompt_id) WHERE rk <= {int(n)} ORDER BY r.account_id, rk
            """
        ).fetchall()
    finally:
        con.unregister("_sc_top_acc")
    out: dict[str, list[dict]] = {}
    for acc, pid, sim, text in rows:
        out.setdefault(acc, []).append({"prompt_id": int(pid), "similarity": round(float(sim), 4), "text": text})
    return out


def _network_examples(con: duckdb.DuckDBPyConnection, net, mask: np.ndarray, cut: float) -> dict[int, list[dict]]:
    """Per account index in ``mask``: its strongest shared families with their centre text and weight, the
    mean standing of the family's other senders as a multiple of the cut-off (above 1: they stand out too)."""
    top = net.top_families(mask)
    fids = sorted({f for lst in top.values() for f, *_ in lst})
    if not fids:
        return {}
    con.register("_sc_cn_f", pa.table({"prompt_id": np.asarray(fids, dtype=np.int64)}))
    try:
        text = dict(con.execute("SELECT p.prompt_id, left(p.text, 200) FROM prompts p JOIN _sc_cn_f USING (prompt_id)")
                    .fetchall())
    finally:
        con.unregister("_sc_cn_f")
    return {i: [{"family_id": f, "n_accounts": k, "senders_standing": round(w / cut, 2) if cut > 0 else None,
                 "exchanges": c, "center": text.get(f)}
                for f, k, w, c in lst] for i, lst in top.items()}


def _add_joins(ring_members: list[np.ndarray], ring_of: np.ndarray, tied: np.ndarray, joined: dict[int, int],
               by_content: np.ndarray | None = None) -> list[np.ndarray]:
    """``ring_members`` with the ``joined`` accounts (index -> ring) added; ``ring_of`` and ``tied`` updated
    in place. A joined account counts as tied to its ring by content unless ``by_content`` (bool per
    account) says it is not."""
    if not joined:
        return ring_members
    extra: dict[int, list[int]] = {}
    for i, r in joined.items():
        extra.setdefault(r, []).append(i)
        ring_of[i] = r
        tied[i] = True if by_content is None else bool(by_content[i])
    return [np.sort(np.concatenate([mem, np.asarray(extra.get(r, []), dtype=np.int64)]))
            for r, mem in enumerate(ring_members)]


def _intense_accounts(graph: lk.LinkGraph) -> np.ndarray:
    """Accounts with a kept link that stays below the pair cut: they passed the intense-item test."""
    below = graph.weight <= graph.threshold
    out = np.zeros(len(graph.accounts), dtype=bool)
    out[graph.a[below]] = True
    out[graph.b[below]] = True
    return out


def _partners(graph: lk.LinkGraph) -> dict[int, list[int]]:
    """Link indices per account, strongest first."""
    order = np.argsort(-graph.weight, kind="stable")
    out: dict[int, list[int]] = {}
    for j in order.tolist():
        out.setdefault(int(graph.a[j]), []).append(j)
        out.setdefault(int(graph.b[j]), []).append(j)
    return out


def _link_examples(graph: lk.LinkGraph, links: list[int], i: int, key: str, n: int = 3) -> list[dict]:
    """Up to ``n`` shared items of kind ``key`` from the account's strongest links."""
    out: list[dict] = []
    for j in links:
        other = int(graph.b[j]) if int(graph.a[j]) == i else int(graph.a[j])
        for e in graph.evidence.get((int(graph.a[j]), int(graph.b[j])), {}).get(key, []):
            out.append({"other_account": graph.accounts[other], **e})
            if len(out) >= n:
                return out
    return out


def _template_examples(con: duckdb.DuckDBPyConnection, mask: np.ndarray, suppressed: str | None = None,
                       n: int = 3) -> dict[str, list[dict]]:
    """Per account with templated exchanges: its top shared templates with pattern and example (none of the
    templates in the registered relation `suppressed`, ``(kind, item)``)."""
    rows = con.execute(
        f"""
        WITH tacc AS ({sg.SHARED_TEMPLATES_SQL}
        ), per AS (
            SELECT e.account_id, m.template_id, count(*) AS c, min(e.prompt_id) AS pid,
                   row_number() OVER (PARTITION BY e.account_id ORDER BY count(*) DESC, m.template_id) AS rk
            FROM exchanges e JOIN template_members m USING (prompt_id) JOIN tacc USING (template_id)
            {f"WHERE m.template_id NOT IN (SELECT item FROM {suppressed} WHERE kind = 'T')" if suppressed else ""}
            GROUP BY e.account_id, m.template_id
        )
        SELECT per.account_id, per.template_id, per.c, tacc.k, left(t.pattern, 200), left(p.text, 200)
        FROM per JOIN tacc USING (template_id) LEFT JOIN templates t USING (template_id)
        LEFT JOIN prompts p ON p.prompt_id = per.pid
        WHERE rk <= {int(n)} ORDER BY per.account_id, rk
        """
    ).fetchall()
    out: dict[str, list[dict]] = {}
    for acc, tid, c, k, pat, text in rows:
        out.setdefault(acc, []).append({"template_id": int(tid), "exchanges": int(c), "n_accounts": int(k),
                                        "pattern": pat, "example": text})
    return out


def _elicit_examples(con: duckdb.DuckDBPyConnection, mask: np.ndarray, n: int = 3) -> dict[str, list[dict]]:
    """Per account: its elicitation prompts with the highest similarity to the exemplars."""
    rows = con.execute(
        f"""
        WITH x AS (
            SELECT DISTINCT e.account_id, e.prompt_id, el.elicit_sim FROM exchanges e
            JOIN _sc_elicit el USING (prompt_id) WHERE el.is_elicit
        ), r AS (
            SELECT *, row_number() OVER (PARTITION BY account_id ORDER BY elicit_sim DESC, prompt_id) AS rk FROM x
        )
        SELECT r.account_id, r.prompt_id, r.elicit_sim, left(p.text, 200)
        FROM r JOIN prompts p USING (prompt_id) WHERE rk <= {int(n)} ORDER BY r.account_id, rk
        """
    ).fetchall()
    out: dict[str, list[dict]] = {}
    for acc, pid, sim, text in rows:
        out.setdefault(acc, []).append({"prompt_id": int(pid), "similarity": round(float(sim), 4), "text": text})
    return out


def _write(con: duckdb.DuckDBPyConnection, graph: lk.LinkGraph, ring_rows: list, acc_rows: list,
           quiet: list[str]) -> None:
    """Replace the three output tables (no BEGIN/COMMIT: the caller owns the transaction)."""
    for t in ("account_links", "rings", "account_scores"):
        con.execute(f"DELETE FROM {t}")
    if len(graph.a):
        acc = np.array(graph.accounts, dtype=object)
        ev = [json.dumps(graph.evidence.get((int(a), int(b)), {}), ensure_ascii=False)
              for a, b in zip(graph.a.tolist(), graph.b.tolist(), strict=True)]
        lt = pa.table({"a": acc[graph.a].tolist(), "b": acc[graph.b].tolist(), "w": graph.weight,  # noqa: F841
                       "n": graph.n_shared.astype(np.int32), "ev": ev})
        con.execute("INSERT INTO account_links SELECT a, b, w, n, ev::JSON FROM lt")
    if ring_rows:
        con.executemany("INSERT INTO rings VALUES (?, ?, ?, ?, ?::JSON, ?)", ring_rows)
    if acc_rows:
        st = pa.table({  # noqa: F841 (read by DuckDB)
            "account_id": [r[0] for r in acc_rows], "score": [r[1] for r in acc_rows],
            "ring_id": pa.array([r[2] for r in acc_rows], type=pa.int64()),
            "top_signal": [r[3] for r in acc_rows], "signals": [r[4] for r in acc_rows],
        })
        con.execute("INSERT INTO account_scores SELECT account_id, score, ring_id, top_signal, signals::JSON FROM st")
    if quiet:
        qt = pa.table({"account_id": quiet})  # noqa: F841 (read by DuckDB)
        con.execute("INSERT INTO account_scores SELECT account_id, 0.0, NULL, NULL, '[]'::JSON FROM qt")
