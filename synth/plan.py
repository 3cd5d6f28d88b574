"""The plan: every row's account, time, source and item, decided up front with numpy (about 20 bytes a
row, see `synth.generator` for the two phases); the text of a row is chosen later by `synth.render`."""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field

import numpy as np

from synth import vocab as V
from synth.config import COLUMNS, KINDS, MODELS, SynthConfig
from synth.texts import DOMAINS, Template, benchmark_question

log = logging.getLogger(__name__)

# Row sources in the plan.
ORGANIC, COVER, VIRAL, APP, COPY, SWEEP, COT, LOWSLOW = range(8)
BANK, BANK_STRIDE = 8, 1 << 24  # season only: a public bank's question (item = bank * stride + question)
_KIND_SRC = {"copy_ring": COPY, "template_sweep": SWEEP, "cot_elicitation": COT, "low_slow": LOWSLOW}

_DAY = 86_400
# Shares of the non-campaign traffic given to the hard negatives; small enough to stay a minority,
# large enough that at 20k exchanges each viral prompt reaches 50+ distinct accounts.
_VIRAL_SHARE = 0.045
_APP_SHARE = 0.025
_COVER_RATE = 0.12
MODEL_P = np.array([0.45, 0.33, 0.14, 0.08])
# Local-time activity of people: quiet at night, peaks late morning and evening.
_DIURNAL = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4, 5, 5.5, 5.5, 5, 5, 5, 4.8, 4.6, 4.5, 4.6, 5, 5.2, 4.6, 3.4, 2]
)
_DIURNAL = _DIURNAL / _DIURNAL.sum()
_TZ_CHOICES = np.array([-8, -7, -6, -5, -4, -3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
_TZ_P = np.array([8, 3, 7, 12, 3, 4, 8, 12, 6, 3, 1, 7, 1, 3, 8, 5, 3], dtype=float)
_TZ_P = _TZ_P / _TZ_P.sum()
_DOMAIN_P = np.array([3.0 if d in ("coding", "writing", "email") else 1.0 for d in DOMAINS])
_DOMAIN_P = _DOMAIN_P / _DOMAIN_P.sum()


@dataclass(frozen=True)
class _KindSpec:
    weight: float
    accounts: tuple[int, int]
    per_account: tuple[int, int]
    synced_p: float
    window_days: tuple[float, float]


_KIND_SPECS = {
    "copy_ring": _KindSpec(0.28, (5, 40), (15, 45), 0.6, (3, 14)),
    "template_sweep": _KindSpec(0.30, (5, 60), (20, 50), 0.5, (2, 10)),
    "cot_elicitation": _KindSpec(0.22, (5, 40), (15, 45), 0.4, (5, 20)),
    "low_slow": _KindSpec(0.20, (40, 100), (5, 30), 0.0, (0, 0)),  # window: most of the period
}


# Mutable while planning and rendering (examples fill in as rows render); never returned: the
# public result is the frozen CampaignTruth.
@dataclass
class _Campaign:
    cid: str
    kind: str
    accounts: np.ndarray  # internal account indices
    synced: bool
    ip_mode: int
    model: int
    pattern_rows: int = 0
    cover_rows: int = 0
    description: str = ""
    pool: list[str] = field(default_factory=list)
    template: Template | None = None
    combo_mult: int = 1
    combo_off: int = 0
    phrasings: tuple[tuple[str, bool], ...] = ()
    preamble: str = ""
    tasks: tuple[Template, ...] = ()
    examples: list[str] = field(default_factory=list)
    seed: int = 0
    window: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class _Viral:
    text: str
    tails: tuple[str, ...]
    accounts: np.ndarray


class Plan:
    """Every row's account, time, source and item, as compact arrays sorted by time."""

    # What a profile varies besides the arrays; the season plan (`synth.season`) overrides them.
    columns, app_templates, banks, app_template_idx = COLUMNS, V.APP_TEMPLATES, (), None
    infra = None  # `synth.infra.Infra` when the rows carry request metadata

    def __init__(self, config: SynthConfig) -> None:
        config.check()
        t0 = time.perf_counter()
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.period = config.days * _DAY
        n = config.exchanges
        self.campaigns: list[_Campaign] = []
        self.sweep_offset = int(self.rng.integers(0, 1 << 16))
        self.virals: list[_Viral] = []
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

        campaign_budget = round(n * config.campaign_share) if n >= 500 else 0
        camp_rows, camp_acct_count = self._plan_campaigns(campaign_budget)
        used = sum(len(r[0]) for r in camp_rows)
        rest = n - used
        viral_budget = round(rest * _VIRAL_SHARE) if n >= 1000 else 0
        app_budget = round(rest * _APP_SHARE) if n >= 1000 else 0
        organic_budget = rest - viral_budget - app_budget

        org_counts = self._organic_counts(organic_budget)
        n_org = len(org_counts)
        n_app = 2 if app_budget >= 2 else 0
        self.n_organic, self.n_app = n_org, n_app
        self.app_base = n_org
        camp_base = n_org + n_app
        self.n_accounts = camp_base + camp_acct_count
        self._account_attributes(n_org, n_app, camp_acct_count)

        rows.append(self._organic_rows(org_counts))
        if n_app:
            rows.append(self._app_rows(app_budget))
        if viral_budget:
            rows.append(self._viral_rows(viral_budget, n_org))
        for acct, ts, src, item in camp_rows:
            rows.append((acct + camp_base, ts, src, item))
        for camp in self.campaigns:
            camp.accounts = camp.accounts + camp_base
            self._campaign_account_attributes(camp)

        acct, ts, src, item = stack_rows(rows, n, self.period)
        # Ties broken by a random key so that equal timestamps don't group sources together.
        order = np.lexsort((self.rng.permutation(n), ts))
        self.acct, self.ts, self.src, self.item = acct[order], ts[order], src[order], item[order]
        self.camp_of = np.full(self.n_accounts, -1, dtype=np.int32)
        for ci, camp in enumerate(self.campaigns):
            self.camp_of[camp.accounts] = ci
        self.public_num = self.rng.permutation(self.n_accounts)
        self.id_width = max(6, len(str(self.n_accounts - 1)))
        log.info(
            "planned %d rows, %d accounts (%d campaigns) in %.2fs",
            n, self.n_accounts, len(self.campaigns), time.perf_counter() - t0,
        )  # fmt: skip

    # --- times ---------------------------------------------------------------------------

    def _diurnal_times(self, day: np.ndarray, tz: np.ndarray) -> np.ndarray:
        """Seconds from the period start, for local days/hours drawn by the diurnal curve."""
        hour = self.rng.choice(24, size=len(day), p=_DIURNAL)
        sec = day.astype(np.int64) * _DAY + (hour - tz).astype(np.int64) * 3600
        sec += self.rng.integers(0, 3600, size=len(day))
        return np.mod(sec, self.period)

    # --- organic ---------------------------------------------------------------------------

    def _organic_counts(self, budget: int) -> np.ndarray:
        """Heavy-tailed prompts per account summing exactly to ``budget``."""
        if budget <= 0:
            return np.zeros(0, dtype=np.int64)
        rng = self.rng
        n_heavy = max(2, budget // 6000) if budget >= 2000 else 0
        heavy = np.clip(rng.lognormal(np.log(250), 0.5, size=n_heavy), 100, 1500).astype(np.int64)
        heavy = heavy[np.cumsum(heavy) <= budget // 8]  # heavy users never dominate the log
        remaining = budget - int(heavy.sum())
        parts = [heavy]
        while remaining > 0:
            est = int(remaining / 5.0 * 1.2) + 16
            light = np.minimum(1 + np.floor(rng.lognormal(0.6, 1.2, size=est)), 150).astype(np.int64)
            cum = np.cumsum(light)
            cut = int(np.searchsorted(cum, remaining))
            if cut < len(light):
                light = light[: cut + 1].copy()
                light[-1] -= int(cum[cut]) - remaining
                light = light[light > 0]
            parts.append(light)
            remaining -= int(light.sum())
        counts = np.concatenate(parts)
        return counts[rng.permutation(len(counts))]

    def _organic_rows(self, counts: np.ndarray) -> tuple[np.ndarray, ...]:
        """Sessions of a few prompts each, on days within each account's active span."""
        rng = self.rng
        n_acct = len(counts)
        days = self.config.days
        n_sess = 1 + rng.binomial(np.maximum(counts - 1, 0), 0.3)
        first = rng.integers(0, days, size=n_acct)
        span = np.where(counts >= 30, days, np.minimum(days, 1 + rng.geometric(0.25, size=n_acct)))
        first = np.where(counts >= 30, 0, first)
        sess_acct = np.repeat(np.arange(n_acct), n_sess)
        sess_day = first[sess_acct] + (rng.random(len(sess_acct)) * span[sess_acct]).astype(np.int64)
        sess_start = self._diurnal_times(np.mod(sess_day, days), self.tz[sess_acct])
        sess_len = np.minimum(rng.exponential(1200, size=len(sess_acct)), 4 * 3600)
        sess_offset = np.concatenate(([0], np.cumsum(n_sess)[:-1]))
        acct = np.repeat(np.arange(n_acct), counts)
        sess = sess_offset[acct] + (rng.random(len(acct)) * n_sess[acct]).astype(np.int64)
        ts = sess_start[sess] + (rng.random(len(acct)) * sess_len[sess]).astype(np.int64)
        return acct, ts, np.full(len(acct), ORGANIC), np.zeros(len(acct), dtype=np.int64)

    def _app_rows(self, budget: int) -> tuple[np.ndarray, ...]:
        """Two customer integrations; the first sends most. Machine traffic: all day, every day."""
        rng = self.rng
        first = int(round(budget * 0.65))
        acct = np.concatenate([np.full(first, self.app_base), np.full(budget - first, self.app_base + 1)])
        item = np.concatenate([np.zeros(first, dtype=np.int64), np.ones(budget - first, dtype=np.int64)])
        # Mild business-hours bump: the app serves a customer's own users.
        ts = rng.integers(0, self.period, size=budget)
        bump = rng.random(budget) < 0.3
        ts[bump] = (ts[bump] // _DAY) * _DAY + rng.integers(13 * 3600, 22 * 3600, size=int(bump.sum()))
        return acct, ts, np.full(budget, APP), item

    def _viral_rows(self, budget: int, n_org: int) -> tuple[np.ndarray, ...]:
        """Each viral prompt trends from a start day and decays; senders are distinct organic accounts."""
        rng = self.rng
        weights = np.array([0.26, 0.2, 0.16, 0.14, 0.12, 0.12])
        counts = np.floor(weights * budget).astype(np.int64)
        counts[0] += budget - int(counts.sum())
        accts, tss, items = [], [], []
        for v, (text, tails) in enumerate(V.VIRAL_PROMPTS):
            k = int(counts[v])
            chosen = rng.choice(n_org, size=min(k, n_org), replace=False)
            if k > n_org:
                chosen = np.concatenate([chosen, rng.integers(0, n_org, size=k - n_org)])
            self.virals.append(_Viral(text, tails, np.unique(chosen)))
            start = rng.uniform(0, 0.6) * self.period
            day = ((start + rng.exponential(0.15 * self.period, size=k)) // _DAY).astype(np.int64)
            day = np.minimum(day, self.config.days - 1)
            accts.append(chosen)
            tss.append(self._diurnal_times(day, self.tz[chosen]))
            items.append(np.full(k, v, dtype=np.int64))
        return np.concatenate(accts), np.concatenate(tss), np.full(budget, VIRAL), np.concatenate(items)

    # --- accounts --------------------------------------------------------------------------

    def _account_attributes(self, n_org: int, n_app: int, n_camp: int) -> None:
        rng = self.rng
        n = n_org + n_app + n_camp
        self.tz = rng.choice(_TZ_CHOICES, size=n, p=_TZ_P)
        self.model_pref = rng.choice(len(MODELS), size=n, p=MODEL_P).astype(np.int8)
        self.dom1 = rng.choice(len(DOMAINS), size=n, p=_DOMAIN_P).astype(np.int8)
        self.dom2 = rng.choice(len(DOMAINS), size=n, p=_DOMAIN_P).astype(np.int8)
        # Residential ISPs: a few hundred /16 blocks. Datacenters: a few dozen other /16 blocks.
        self.res_prefixes = _public_prefixes(rng, 300)
        self.dc_prefixes = _public_prefixes(rng, 24)
        self.home_ip = self._residential(n)
        self.alt_ip = self._residential(n)
        self.ip_mode = np.zeros(n, dtype=np.int8)  # 0 home/mobile, 1 datacenter pool, 2 rotating proxy
        self.pool_base = np.zeros(n, dtype=np.uint32)
        self.pool_size = np.ones(n, dtype=np.uint32)
        for a in range(n_org, n_org + n_app):
            self.ip_mode[a] = 1
            self.pool_base[a] = self._dc_pool_base()
            self.pool_size[a] = rng.integers(2, 5)
            self.model_pref[a] = 1

    def _residential(self, n: int) -> np.ndarray:
        prefix = self.res_prefixes[self.rng.integers(0, len(self.res_prefixes), size=n)]
        return (prefix << 16) | self.rng.integers(256, 65535, size=n).astype(np.uint32)

    def _dc_pool_base(self) -> int:
        prefix = int(self.dc_prefixes[self.rng.integers(0, len(self.dc_prefixes))])
        return (prefix << 16) | (int(self.rng.integers(0, 255)) << 8) | int(self.rng.integers(1, 200))

    def _campaign_account_attributes(self, camp: _Campaign) -> None:
        accts = camp.accounts
        rng = self.rng
        self.ip_mode[accts] = camp.ip_mode
        if camp.ip_mode == 1:
            self.pool_base[accts] = self._dc_pool_base()
            self.pool_size[accts] = rng.integers(3, 20)
        keep = rng.random(len(accts)) < 0.8
        self.model_pref[accts[keep]] = camp.model

    # --- campaigns -------------------------------------------------------------------------

    def _plan_campaigns(self, budget: int) -> tuple[list[tuple[np.ndarray, ...]], int]:
        """Campaign rows with campaign-local account numbers, and how many accounts they use."""
        rows: list[tuple[np.ndarray, ...]] = []
        n_acct = 0
        if budget <= 0:
            return rows, 0
        rng = self.rng
        counters = dict.fromkeys(KINDS, 0)
        for kind in KINDS:
            spec = _KIND_SPECS[kind]
            pattern = int(budget * spec.weight / (1 + _COVER_RATE))
            lo_a, hi_a = spec.accounts
            lo_p, hi_p = spec.per_account
            for size, mean_p in self._instance_sizes(pattern, spec):
                a = int(np.clip(round(size / mean_p), lo_a, hi_a))
                a = min(a, max(2, size // lo_p))
                a = max(a, math.ceil(size / hi_p), 2)
                if size < a:
                    continue
                counters[kind] += 1
                camp = self._new_campaign(kind, counters[kind], a)
                local = np.arange(n_acct, n_acct + a)
                # Concentrated Dirichlet: accounts of one campaign vary, but none becomes a heavy user.
                per = 1 + rng.multinomial(size - a, rng.dirichlet(np.full(a, 20.0)))
                rows.extend(self._campaign_rows(camp, local, per))
                camp.accounts = local
                self.campaigns.append(camp)
                n_acct += a
        return rows, n_acct

    def _instance_sizes(self, pattern: int, spec: _KindSpec) -> list[tuple[int, float]]:
        """Split a kind's campaign rows into instances: (rows, prompts per account) each.

        Accounts per instance are log-uniform over the kind's range so sizes differ a lot; the
        first instance takes at most 60% when it would swallow the budget, so every kind has at
        least two instances whenever the budget allows.
        """
        rng = self.rng
        (lo_a, hi_a), (lo_p, hi_p) = spec.accounts, spec.per_account
        out: list[tuple[int, float]] = []
        remaining = pattern
        while remaining >= 2 * lo_p:
            a = math.exp(rng.uniform(math.log(lo_a), math.log(hi_a)))
            mean_p = float(rng.uniform(lo_p, hi_p))
            size = int(a * mean_p)
            if not out and size > 0.6 * remaining:
                size = int(remaining * rng.uniform(0.35, 0.6))
            size = min(size, remaining)
            if remaining - size < 2 * lo_p * max(2, lo_a // 4):
                size = remaining  # a leftover too small for an instance of its own
            out.append((size, mean_p))
            remaining -= size
        return out

    def _new_campaign(self, kind: str, index: int, n_accounts: int) -> _Campaign:
        rng = self.rng
        cid = f"{kind}-{index:02d}"
        synced = bool(rng.random() < _KIND_SPECS[kind].synced_p)
        ip_p = {"copy_ring": (0.2, 0.5, 0.3), "template_sweep": (0.2, 0.5, 0.3),
                "cot_elicitation": (0.3, 0.4, 0.3), "low_slow": (0.5, 0.2, 0.3)}[kind]  # fmt: skip
        ip_mode = int(rng.choice(3, p=ip_p))
        model = {"copy_ring": 0, "template_sweep": int(rng.choice(2)), "cot_elicitation": 2,
                 "low_slow": int(rng.choice(2))}[kind]  # fmt: skip
        seed = int(rng.integers(0, 2**63 - 1))
        camp = _Campaign(cid, kind, np.zeros(0, dtype=np.int64), synced, ip_mode, model, seed=seed)
        rnd = random.Random(seed)
        if kind == "template_sweep":
            # Instances alternate between cores with a long pasted passage (embeddings of the
            # whole prompt then hardly group) and cores with short slots; instance j of a group
            # gets the j-th (intro, core, rules) combination, so instances differ while they can.
            long_cores = [c for c in V.SWEEP_CORES if "passage}" in c]
            cores = long_cores if index % 2 == 0 else [c for c in V.SWEEP_CORES if "passage}" not in c]
            n_i, n_c = len(V.SWEEP_INTROS), len(cores)
            c = (index // 2 + self.sweep_offset) % (n_i * n_c * len(V.SWEEP_RULES))
            intro, core, rules = (
                V.SWEEP_INTROS[c % n_i],
                cores[(c // n_i) % n_c],
                V.SWEEP_RULES[c // (n_i * n_c)],
            )
            camp.template = Template(
                f"{intro} {core}\n\n{rules}" if not core.startswith("{") else f"{core}\n\n{intro} {rules}"
            )
            space = camp.template.space()
            camp.combo_mult = _coprime_multiplier(space, rnd)
            camp.combo_off = rnd.randrange(space)
            camp.description = f"one template swept over distinct slot values: {core[:90]}..."
        elif kind == "cot_elicitation":
            phr = [(p, True) for p in V.COT_BEFORE] + [(p, False) for p in V.COT_AFTER]
            camp.phrasings = tuple(rnd.sample(phr, rnd.randint(5, 12)))
            camp.description = (
                f"distinct reasoning questions wrapped in {len(camp.phrasings)} chain-of-thought phrasings"
            )
        elif kind == "low_slow":
            j = index - 1 + self.sweep_offset
            n_p = len(V.ANNOTATOR_PREAMBLES)
            guideline = V.ANNOTATOR_GUIDELINES[(j // n_p) % len(V.ANNOTATOR_GUIDELINES)]
            camp.preamble = f"{V.ANNOTATOR_PREAMBLES[j % n_p]} {guideline}"
            camp.tasks = tuple(Template(t) for t in rnd.sample(V.ANNOTATION_TASKS, rnd.randint(2, 4)))
            camp.description = f"many accounts, few prompts each, shared preamble: {camp.preamble[:70]}..."
        else:
            camp.description = (
                "pool of benchmark-like questions, each sent by several accounts with light perturbations"
            )
        return camp

    def _campaign_rows(
        self, camp: _Campaign, local: np.ndarray, per: np.ndarray
    ) -> list[tuple[np.ndarray, ...]]:
        rng = self.rng
        a = len(local)
        if camp.kind == "copy_ring":
            acct_idx, item = self._copy_assignment(camp, per)
        else:
            acct_idx = np.repeat(np.arange(a), per)
            # Items are a sequence within the campaign, handed out in shuffled order so that no
            # account repeats one and accounts interleave.
            item = rng.permutation(len(acct_idx)).astype(np.int64)
        camp.pattern_rows = len(acct_idx)
        ts = self._campaign_times(camp, acct_idx, a)
        cover = rng.binomial(per, _COVER_RATE) + (rng.random(a) < 0.4)
        camp.cover_rows = int(cover.sum())
        cover_acct = np.repeat(np.arange(a), cover)
        lo, hi = camp.window
        day = rng.integers(
            max(0, lo // _DAY - 2), min(self.config.days, hi // _DAY + 3), size=len(cover_acct)
        )
        cover_tz = rng.choice(_TZ_CHOICES, size=a, p=_TZ_P)[cover_acct]
        cover_ts = self._diurnal_times(day, cover_tz)
        src = _KIND_SRC[camp.kind]
        return [
            (local[acct_idx], ts, np.full(len(acct_idx), src), item),
            (
                local[cover_acct],
                cover_ts,
                np.full(len(cover_acct), COVER),
                np.zeros(len(cover_acct), dtype=np.int64),
            ),
        ]

    def _copy_assignment(self, camp: _Campaign, per: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each pool item goes to 2-6 distinct ring accounts, weighted by their planned volume."""
        rng = self.rng
        a = len(per)
        total = int(per.sum())
        rmax = min(6, a)
        r = rng.integers(2, rmax + 1, size=total // 2 + 1) if a >= 2 else np.ones(total, dtype=np.int64)
        cum = np.cumsum(r)
        n_items = int(np.searchsorted(cum, total)) + 1
        r = r[:n_items].copy()
        r[-1] -= int(cum[n_items - 1]) - total
        # Efraimidis-Spirakis weighted sampling without replacement, one row of keys per item.
        keys = rng.random((n_items, a)) ** (1.0 / per[None, :])
        top = np.argsort(-keys, axis=1)[:, :rmax]
        take = np.arange(rmax)[None, :] < r[:, None]
        acct_idx = top[take]
        item = np.repeat(np.arange(n_items), r)
        rnd = random.Random(camp.seed)
        seen: set[str] = set()
        while len(camp.pool) < n_items:
            q = benchmark_question(rnd)
            if q not in seen:
                seen.add(q)
                camp.pool.append(q)
        return acct_idx, item.astype(np.int64)

    def _campaign_times(self, camp: _Campaign, acct_idx: np.ndarray, a: int) -> np.ndarray:
        rng = self.rng
        days = self.config.days
        spec = _KIND_SPECS[camp.kind]
        if camp.kind == "low_slow":
            dur = rng.uniform(0.75, 1.0) * days
        else:
            dur = min(days, rng.uniform(*spec.window_days))
        start = rng.uniform(0, days - dur)
        lo, hi = int(start * _DAY), int((start + dur) * _DAY)
        camp.window = (lo, hi)
        n = len(acct_idx)
        if camp.synced:
            # Shared working sessions: many accounts active in the same hours.
            op_tz = int(rng.choice(_TZ_CHOICES, p=_TZ_P))
            n_sess = max(2, round(dur * rng.uniform(0.5, 1.5)))
            sess_day = rng.integers(int(start), max(int(start) + 1, int(start + dur)), size=n_sess)
            sess_start = sess_day * _DAY + (rng.integers(9, 22, size=n_sess) - op_tz) * 3600
            sess_len = rng.integers(3600, 3 * 3600, size=n_sess)
            s = rng.integers(0, n_sess, size=n)
            return np.mod(sess_start[s] + (rng.random(n) * sess_len[s]).astype(np.int64), self.period)
        tz = rng.choice(_TZ_CHOICES, size=a, p=_TZ_P)[acct_idx]
        day = (start + rng.random(n) * dur).astype(np.int64)
        return self._diurnal_times(np.minimum(day, days - 1), tz)


def stack_rows(rows: list[tuple[np.ndarray, ...]], n: int, period: int) -> tuple[np.ndarray, ...]:
    """Planned (account, time, source, item) blocks as four arrays of ``n`` rows, times clipped to the period."""
    types = (np.int32, np.int64, np.int8, np.int64)
    acct, ts, src, item = (np.concatenate([r[i] for r in rows]).astype(t) for i, t in enumerate(types))
    if len(acct) != n:
        raise AssertionError(f"planned {len(acct)} rows, wanted {n}")
    return acct, np.clip(ts, 0, period - 1), src, item


def _public_prefixes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random /16 prefixes outside private, loopback and multicast space."""
    first = rng.choice(
        np.array([o for o in range(24, 224) if o not in (100, 127, 169, 172, 192, 198)]), size=n
    )
    return ((first.astype(np.uint32) << 8) | rng.integers(0, 256, size=n).astype(np.uint32)).astype(np.uint32)


def _coprime_multiplier(space: int, rnd: random.Random) -> int:
    """A multiplier coprime to ``space``: ``(i * m + off) % space`` is then a permutation."""
    if space <= 1:
        return 1
    while True:
        m = rnd.randrange(1, space) if space > 2 else 1
        if math.gcd(m, space) == 1:
            return m
