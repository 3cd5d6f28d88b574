"""The ``season`` profile's plan: distillation campaigns at the scale of a real season of abuse.

Modelled on public reports: tens of thousands of fraudulent accounts and tens of millions of
exchanges in a few weeks, proxy networks running thousands of accounts at once and mixing
distillation traffic with ordinary customer requests, several labs drawing on the same public
prompt banks. Scaled with ``exchanges``: at 1M, a few thousand campaign accounts among ~150k organic
ones; at 10M, tens of thousands among ~1.5M.

Besides the default plan's hard negatives (viral prompts, heavy organic users) it plants:

* **public prompt banks**: a few banks of benchmark-like questions, each from a fixed seed (the same in
  every dataset); several copy-ring and chain-of-thought campaigns draw on one bank, so campaigns of one
  kind overlap in content, and a few % of organic users paste 1-3 bank questions (bystanders).
* **account shapes**: per-account volume is heavy-tailed (thin accounts of 2-5 exchanges, heavy ones of
  hundreds to thousands), and ~30 % of campaign accounts are diluted: their campaign rows are only
  10-50 % of what they send, the rest ordinary requests through the same infrastructure.
* **single-account template integrations**: organic customers each sending one fixed template with
  varying slots at high volume, machine timing, datacenter IPs; popular templates are shared.
* **infrastructure traces** (`synth.infra`), strong, medium or none per campaign, over organic
  metadata with a realistic spread (shared CGNAT addresses, common clients, family payments).

The plan reuses `synth.plan.Plan`'s helpers (times, organic volumes, virals, campaign windows and
texts); only what differs lives here. Its random stream is its own, so the default plan is untouched.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable

import numpy as np

from synth.config import COLUMNS, KINDS, META_COLUMNS, SynthConfig
from synth.infra import TRACES, Infra
from synth.plan import (
    _DAY,
    _TZ_CHOICES,
    _TZ_P,
    _VIRAL_SHARE,
    APP,
    BANK,
    BANK_STRIDE,
    COPY,
    COT,
    COVER,
    LOWSLOW,
    SWEEP,
    Plan,
    _Campaign,
    _public_prefixes,
    stack_rows,
)
from synth.texts import benchmark_question

log = logging.getLogger(__name__)

_KIND_SRC = {"copy_ring": COPY, "template_sweep": SWEEP, "cot_elicitation": COT, "low_slow": LOWSLOW}
# Per kind: share of campaign rows, accounts per instance (smallest, largest at 10M exchanges), mean
# rows an account sends (to keep one instance from swallowing its kind's budget).
_SEASON_KINDS = {
    "copy_ring": (0.28, 3, 3000, 45.0),
    "template_sweep": (0.30, 3, 3000, 45.0),
    "cot_elicitation": (0.22, 3, 2500, 45.0),
    "low_slow": (0.20, 10, 4000, 18.0),
}
_FULL_SCALE = 10_000_000
_N_BANKS = 3
_BANK_WEIGHTS = np.array([0.5, 0.3, 0.2])
_BANK_SEED = 9_001  # fixed: a public bank holds the same questions whatever the dataset's seed
_BANK_P = {"copy_ring": 0.7, "cot_elicitation": 0.5}  # share of instances that draw on a bank
_BYSTANDER_P = 0.03
_DILUTED_P = 0.3
_THIN_P, _HEAVY_P = 0.2, 0.04
_TRACE_P = np.array([0.35, 0.35, 0.3])

# Customer integrations: a product's own prompt with its users' data in the slots. Weighted by rank
# when handed out, so the popular ones (an SDK's example prompt, say) run at several companies.
INTEGRATION_TEMPLATES: tuple[str, ...] = (
    "Summarize the following support ticket in two sentences and classify its priority as low, medium "
    "or high.\n\nTicket #{ticket}\nCustomer: {name}\nProduct: {product}\nMessage: {customer_msg}",
    "Generate an SEO product title and a 50-word description for: {product} | color: {color} | "
    "material: {material} | price: ${price}",
    "Classify the sentiment of this review as positive, negative or mixed, and list the product "
    "aspects mentioned. Reply in JSON.\n\nReview: {review}",
    "You are a helpful assistant for a {business_type}. Answer the customer's message politely in a "
    "{tone} tone and suggest one next step.\n\nCustomer message: {customer_msg}",
    "Translate the following text into {language}. Keep formatting and product names unchanged.\n\n{passage}",
    "Extract every person, organisation and date from the text below as a JSON list of objects with "
    "fields type and value.\n\nText: {passage}",
    "Review this code for bugs and security issues. Answer with a bulleted list, most severe first.\n\n"
    "```\n{code}\n```",
    "Write a short, {tone} reply to this email on behalf of {name}. Do not promise refunds.\n\n{email_body}",
    "Rewrite the following job ad for a {job} position so it reads clearly for {audience}; keep it "
    "under 120 words.\n\n{passage}",
    "Given the table `{table}`, write one SQL query that answers: {sentence} Return only SQL.",
    "Summarize this meeting transcript into decisions, owners and deadlines.\n\n{long_passage}",
    "Tag this support conversation with up to three labels from: billing, bug, feature request, "
    "account, shipping, other.\n\n{customer_msg}",
)
_TEMPLATE_P = 1.0 / np.arange(1, len(INTEGRATION_TEMPLATES) + 1)
_TEMPLATE_P = _TEMPLATE_P / _TEMPLATE_P.sum()


def bank_questions(bank: int, size: int) -> tuple[str, ...]:
    """The first ``size`` distinct questions of public bank number ``bank`` (0-based), fixed forever."""
    rnd = random.Random(_BANK_SEED + bank)
    seen: dict[str, None] = {}
    while len(seen) < size:
        seen.setdefault(benchmark_question(rnd))
    return tuple(seen)


class SeasonPlan(Plan):
    """The season profile's rows, as `Plan`'s arrays, plus banks, integrations and request metadata."""

    columns = COLUMNS + META_COLUMNS

    def __init__(self, config: SynthConfig) -> None:  # noqa: PLR0915 - one pass over the budget
        config.check()
        t0 = time.perf_counter()
        self.config = config
        # Its own stream (not Plan's): the default profile's draws stay exactly as they were.
        self.rng = rng = np.random.default_rng([config.seed, 2026])
        self.period = config.days * _DAY
        n = config.exchanges
        self.scale = n / _FULL_SCALE
        self.campaigns: list[_Campaign] = []
        self.sweep_offset = int(rng.integers(0, 1 << 16))
        self.virals = []
        self.app_templates = INTEGRATION_TEMPLATES
        bank_size = int(np.clip(n // 150, 200, 30_000))
        self.banks = tuple(bank_questions(b, bank_size) for b in range(_N_BANKS))
        self.camp_bank: dict[str, int] = {}
        self.camp_trace: dict[str, str] = {}

        camp_rows, n_camp = self._plan_campaigns(round(n * config.campaign_share) if n >= 500 else 0)
        rest = n - sum(len(r[0]) for r in camp_rows)
        integ = self._integration_counts(rest) if n >= 1000 else np.zeros(0, dtype=np.int64)
        viral_budget = round(rest * _VIRAL_SHARE) if n >= 1000 else 0
        by_counts = rng.integers(1, 4, size=int(rest / 5 * _BYSTANDER_P))
        org_counts = self._organic_counts(rest - int(integ.sum()) - viral_budget - int(by_counts.sum()))
        n_org, n_app = len(org_counts), len(integ)
        by_counts = by_counts[: max(0, n_org // 4)]
        self.n_organic, self.n_app, self.app_base = n_org, n_app, n_org
        camp_base = n_org + n_app
        self.n_accounts = camp_base + n_camp
        self._account_attributes(n_org, n_app, n_camp)
        self._mobile_ips(n_org)
        self.infra = Infra(rng, self.n_accounts, int(config.start.timestamp()), config.seed)
        self.infra.assign_organic(np.arange(n_org))
        for a in range(n_org, camp_base):
            self.infra.assign_integration(a)
        self.app_template_idx = rng.choice(len(INTEGRATION_TEMPLATES), size=n_app, p=_TEMPLATE_P)

        rows = [self._organic_rows(org_counts)]
        if n_app:
            rows.append(self._integration_rows(integ))
        if viral_budget:
            rows.append(self._viral_rows(viral_budget, n_org))
        if len(by_counts):
            rows.append(self._bystander_rows(by_counts, n_org))
        rows.extend((acct + camp_base, ts, src, item) for acct, ts, src, item in camp_rows)
        self._proxy_pools = self._proxy_network(max(8, n_camp // 120))
        for camp in self.campaigns:
            camp.accounts = camp.accounts + camp_base
            self._season_campaign_attributes(camp)

        acct, ts, src, item = stack_rows(rows, n, self.period)
        order = np.lexsort((rng.permutation(n), ts))
        self.acct, self.ts, self.src, self.item = acct[order], ts[order], src[order], item[order]
        # Nobody sends before their key exists (synchronised sessions can wrap to the period's start).
        seen, first = np.unique(self.acct, return_index=True)
        self.infra.key_day[seen] = np.minimum(self.infra.key_day[seen], self.ts[first] // _DAY)
        self.camp_of = np.full(self.n_accounts, -1, dtype=np.int32)
        for ci, camp in enumerate(self.campaigns):
            self.camp_of[camp.accounts] = ci
        self.public_num = rng.permutation(self.n_accounts)
        self.id_width = max(6, len(str(self.n_accounts - 1)))
        log.info(
            "season plan: %d rows, %d accounts (%d organic, %d integrations, %d bystanders, %d campaigns "
            "with %d accounts) in %.2fs",
            n, self.n_accounts, n_org, n_app, len(by_counts), len(self.campaigns), n_camp,
            time.perf_counter() - t0,
        )  # fmt: skip

    # --- campaigns -------------------------------------------------------------------------

    def _plan_campaigns(self, budget: int) -> tuple[list[tuple[np.ndarray, ...]], int]:
        """Instances of each kind until its share of ``budget`` is spent; local account numbers."""
        rows: list[tuple[np.ndarray, ...]] = []
        n_acct = 0
        rng = self.rng
        for kind in KINDS:
            weight, lo_a, hi_full, mean_rows = _SEASON_KINDS[kind]
            kind_budget = int(budget * weight)
            hi_a = max(3 * lo_a, round(hi_full * self.scale))
            # No instance may take much more than a third of its kind: every kind has several.
            hi_a = max(lo_a, min(hi_a, round(0.35 * kind_budget / mean_rows)))
            remaining, index, misses = kind_budget, 0, 0
            while misses < 5:
                a = round(math.exp(rng.uniform(math.log(lo_a), math.log(hi_a + 1))))
                pattern, cover = self._account_volumes(kind, a, kind_budget)
                keep = int(np.searchsorted(np.cumsum(pattern + cover), remaining, side="right"))
                if keep < 2:
                    misses += 1
                    continue
                pattern, cover = pattern[:keep], cover[:keep]
                index += 1
                camp = self._new_campaign(kind, index, keep)
                local = np.arange(n_acct, n_acct + keep)
                rows.extend(self._season_rows(camp, local, pattern, cover))
                camp.accounts = local
                self.campaigns.append(camp)
                n_acct += keep
                remaining -= int(pattern.sum() + cover.sum())
        return rows, n_acct

    def _account_volumes(self, kind: str, a: int, kind_budget: int) -> tuple[np.ndarray, np.ndarray]:
        """Campaign rows and ordinary (cover) rows per account: thin, regular, heavy; ~30 % diluted."""
        rng = self.rng
        u = rng.random(a)
        thin = rng.integers(2, 6, size=a)
        if kind == "low_slow":
            pattern = np.where(u < 0.3, thin, rng.integers(6, 31, size=a))
        else:
            regular = np.clip(np.floor(rng.lognormal(math.log(12), 0.9, size=a)), 6, 199).astype(np.int64)
            heavy_cap = min(4000, kind_budget // 6)
            heavy = (
                np.clip(rng.lognormal(math.log(450), 0.8, size=a), 200, heavy_cap).astype(np.int64)
                if heavy_cap >= 200
                else regular
            )
            pattern = np.where(u < _THIN_P, thin, np.where(u < 1 - _HEAVY_P, regular, heavy))
        diluted = rng.random(a) < _DILUTED_P
        # A diluted account's campaign rows are a share < 0.5 of all it sends.
        share = rng.uniform(0.1, 0.48, size=a)
        pattern = np.where(diluted, np.minimum(pattern, 1500), pattern)
        cover_d = np.ceil(pattern * (1 / share - 1)).astype(np.int64)
        cover_r = np.where(pattern >= 6, rng.binomial(pattern, 0.06), 0)
        return pattern.astype(np.int64), np.where(diluted, cover_d, cover_r).astype(np.int64)

    def _season_rows(
        self, camp: _Campaign, local: np.ndarray, pattern: np.ndarray, cover: np.ndarray
    ) -> list[tuple[np.ndarray, ...]]:
        rng = self.rng
        a = len(local)
        bank = -1
        if rng.random() < _BANK_P.get(camp.kind, 0.0):
            bank = int(rng.choice(_N_BANKS, p=_BANK_WEIGHTS))
            self.camp_bank[camp.cid] = bank
        if camp.kind == "copy_ring":
            acct_idx, item = self._ring_assignment(camp, pattern, bank)
        else:
            acct_idx = np.repeat(np.arange(a), pattern)
            item = rng.permutation(len(acct_idx)).astype(np.int64)
            if bank >= 0:  # chain-of-thought over the bank's questions, each asked about once
                q = self.banks[bank]
                pick = rng.permutation(len(q))[: len(acct_idx)]
                camp.pool = [q[i] for i in pick.tolist()]
                item %= len(camp.pool)
        if bank >= 0:
            camp.description += f", drawn from public bank-{bank + 1}"
        camp.pattern_rows = len(acct_idx)
        ts = self._campaign_times(camp, acct_idx, a)
        camp.cover_rows = int(cover.sum())
        cover_acct = np.repeat(np.arange(a), cover)
        lo, hi = camp.window
        # Ordinary requests through the same accounts: around the campaign's weeks, people's hours.
        day = rng.integers(max(0, lo // _DAY - 3), min(self.config.days, hi // _DAY + 4), size=len(cover_acct))
        cover_ts = self._diurnal_times(day, rng.choice(_TZ_CHOICES, size=a, p=_TZ_P)[cover_acct])
        return [
            (local[acct_idx], ts, np.full(len(acct_idx), _KIND_SRC[camp.kind]), item),
            (local[cover_acct], cover_ts, np.full(len(cover_acct), COVER), np.zeros(len(cover_acct), np.int64)),
        ]

    def _ring_assignment(self, camp: _Campaign, per: np.ndarray, bank: int) -> tuple[np.ndarray, np.ndarray]:
        """Items of a copy ring, each sent by a few accounts; linear in rows at any ring size.

        Accounts in random order lay their rows end to end; row ``j`` asks item ``j mod n_items``, so
        an account with fewer rows than there are items never repeats one, and each item is sent by
        ``total / n_items`` accounts (2.5-5 per instance).
        """
        rng = self.rng
        total = int(per.sum())
        n_items = max(1, math.ceil(total / rng.uniform(2.5, 5.0)))
        order = rng.permutation(len(per))
        acct_idx = np.repeat(order, per[order])
        item = rng.permutation(n_items)[np.arange(total) % n_items].astype(np.int64)
        if bank >= 0:
            q = self.banks[bank]
            pick = rng.permutation(len(q))[:n_items].tolist()
            camp.pool = [q[pick[i % len(pick)]] for i in range(n_items)]
        else:
            rnd = random.Random(camp.seed)
            seen: dict[str, None] = {}
            while len(seen) < n_items:
                seen.setdefault(benchmark_question(rnd))
            camp.pool = list(seen)
        return acct_idx, item

    def _proxy_network(self, n: int) -> np.ndarray:
        """Datacenter /24 pools of a proxy network that several campaigns rent from (.2 to .251)."""
        rng = self.rng
        prefix = self.dc_prefixes[rng.integers(0, len(self.dc_prefixes), size=n)].astype(np.uint32)
        return (prefix << 16) | (rng.integers(0, 256, size=n).astype(np.uint32) << 8) | np.uint32(2)

    def _season_campaign_attributes(self, camp: _Campaign) -> None:
        rng = self.rng
        accts = camp.accounts
        trace = str(rng.choice(TRACES, p=_TRACE_P))
        self.camp_trace[camp.cid] = trace
        # strong: datacenter pools; medium: rotating residential proxies or the shared network;
        # none: each account on its own home line, like any customer.
        camp.ip_mode = {"strong": 1, "medium": int(rng.choice([1, 2])), "none": int(rng.choice([0, 2]))}[trace]
        self.ip_mode[accts] = camp.ip_mode
        if camp.ip_mode == 1:
            n_pools = max(1, math.ceil(len(accts) / int(rng.integers(40, 150))))
            pools = self._proxy_pools[rng.integers(0, len(self._proxy_pools), size=n_pools)]
            self.pool_base[accts] = pools[rng.integers(0, n_pools, size=len(accts))]
            self.pool_size[accts] = 250
        keep = rng.random(len(accts)) < 0.8
        self.model_pref[accts[keep]] = camp.model
        self.infra.assign_campaign(accts, trace, camp.window[0] // _DAY)

    # --- organic look-alikes -------------------------------------------------------------

    def _mobile_ips(self, n_org: int) -> None:
        """Mobile carriers put many unrelated users behind each CGNAT address."""
        rng = self.rng
        n_cg = max(64, n_org // 30)
        carriers = _public_prefixes(rng, 12)
        cgnat = (carriers[rng.integers(0, 12, size=n_cg)] << 16) | rng.integers(256, 65535, size=n_cg).astype(
            np.uint32
        )
        self.alt_ip = cgnat[rng.integers(0, n_cg, size=self.n_accounts)]
        mobile_first = np.flatnonzero(rng.random(n_org) < 0.25)
        self.home_ip[mobile_first] = self.alt_ip[mobile_first]

    def _integration_counts(self, rest: int) -> np.ndarray:
        """Exchanges per integration: hundreds at 10M exchanges, each hundreds to thousands of rows."""
        rng = self.rng
        k = max(4, round(self.config.exchanges / 25_000))
        cap = max(100, min(5000, int(rest * 0.004)))
        counts = np.clip(rng.lognormal(math.log(450), 0.9, size=k), min(100, cap), cap).astype(np.int64)
        if counts.sum() > 0.06 * rest:  # small datasets: integrations stay a minority
            counts = np.maximum(1, (counts * (0.06 * rest / counts.sum())).astype(np.int64))
        return counts

    def _integration_rows(self, counts: np.ndarray) -> tuple[np.ndarray, ...]:
        """Machine traffic: a nightly batch at a fixed hour, or a steady stream from go-live on."""
        rng = self.rng
        k = len(counts)
        days = self.config.days
        live = np.where(rng.random(k) < 0.6, rng.integers(0, max(1, days // 3), size=k), 0)
        batch = rng.random(k) < 0.5
        hour = rng.integers(0, 24, size=k)
        which = np.repeat(np.arange(k), counts)
        n = len(which)
        day = live[which] + (rng.random(n) * (days - live[which])).astype(np.int64)
        steady = day * _DAY + rng.integers(0, _DAY, size=n)
        nightly = day * _DAY + hour[which] * 3600 + rng.integers(0, 2400, size=n)
        ts = np.where(batch[which], nightly, steady)
        return which + self.app_base, ts, np.full(n, APP), self.app_template_idx[which].astype(np.int64)

    def _bystander_rows(self, counts: np.ndarray, n_org: int) -> tuple[np.ndarray, ...]:
        """Organic users who paste 1-3 questions from a public bank among their own prompts."""
        rng = self.rng
        who = rng.choice(n_org, size=len(counts), replace=False)
        acct = np.repeat(who, counts)
        n = len(acct)
        bank = rng.choice(_N_BANKS, size=n, p=_BANK_WEIGHTS)
        q = rng.integers(0, len(self.banks[0]), size=n)
        ts = self._diurnal_times(rng.integers(0, self.config.days, size=n), self.tz[acct])
        return acct, ts, np.full(n, BANK), bank * BANK_STRIDE + q

    # --- truth -----------------------------------------------------------------------------

    def truth_extras(self, account_id: Callable[[int], str]) -> dict[str, object]:
        """Banks, account shapes of campaign accounts, bank bystanders (for the truth file)."""
        camp_src = np.isin(self.src, (COPY, SWEEP, COT, LOWSLOW))
        total = np.bincount(self.acct, minlength=self.n_accounts)
        pattern = np.bincount(self.acct[camp_src], minlength=self.n_accounts)
        shapes: dict[str, str] = {}
        for a in np.flatnonzero(self.camp_of >= 0).tolist():
            t, p = int(total[a]), int(pattern[a])
            shapes[account_id(a)] = (
                "diluted" if p < 0.5 * t else "thin" if t <= 5 else "heavy" if t >= 200 else "regular"
            )
        by = np.unique(self.acct[self.src == BANK]).tolist()
        return {
            "banks": [
                {"bank_id": f"bank-{b + 1}", "questions": len(q), "example_questions": list(q[:3])}
                for b, q in enumerate(self.banks)
            ],
            "account_shapes": dict(sorted(shapes.items())),
            "bank_bystanders": sorted(account_id(a) for a in by),
        }

    def campaign_extras(self, cid: str) -> dict[str, str | None]:
        """The bank a campaign draws on (or None) and its infrastructure trace level."""
        b = self.camp_bank.get(cid)
        return {"bank": None if b is None else f"bank-{b + 1}", "infra": self.camp_trace.get(cid)}

