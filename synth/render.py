"""The render: planned rows turned into text, block by block, in time order.

Each block draws from its own ``random.Random`` and numpy generator, both seeded from the config's seed
and the block's number, so the output depends only on the seed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator

import numpy as np

from synth import vocab as V
from synth.config import BLOCK_ROWS, MODELS
from synth.plan import APP, BANK, BANK_STRIDE, COPY, COT, COVER, MODEL_P, ORGANIC, SWEEP, VIRAL, Plan
from synth.texts import (
    DOMAINS,
    Template,
    content_templates,
    organic_noise,
    organic_templates,
    question,
    reasoning_question,
    ring_perturb,
)

log = logging.getLogger(__name__)

# Share of organic prompts that are generic ones recurring everywhere (a hard negative).
_GENERIC_P = 0.04
# Share of organic prompts that carry the user's own text; accounts from _HEAVY_EXCHANGES exchanges up
# paste more. Without it, organic users drew every prompt from a few thousand slot combinations and
# ~56 % of their exchanges fell in near-copy families shared by 2-20 accounts, against ~8 % for the
# real organic traffic of bench/detect_eval.py's corpora scenario.
_CONTENT_P = 0.35
_CONTENT_P_HEAVY = 0.85
_HEAVY_EXCHANGES = 50


class Renderer:
    """Turns planned rows into text, block by block, in time order."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.organic = organic_templates()
        self.content = content_templates()
        self.volume = np.bincount(plan.acct, minlength=plan.n_accounts)
        self.apps = tuple(Template(t) for t in plan.app_templates)
        self.start_epoch = int(plan.config.start.timestamp())
        self.ex_width = max(8, len(str(plan.config.exchanges - 1)))

    def blocks(self, block_rows: int = BLOCK_ROWS) -> Iterator[dict[str, list[str]]]:
        plan = self.plan
        n = len(plan.acct)
        for b, lo in enumerate(range(0, n, block_rows)):
            t0 = time.perf_counter()
            hi = min(n, lo + block_rows)
            block = self._block(b, lo, hi)
            log.debug("rendered rows %d-%d in %.2fs", lo, hi, time.perf_counter() - t0)
            yield block

    def _block(self, b: int, lo: int, hi: int) -> dict[str, list[str]]:
        plan = self.plan
        n = hi - lo
        rs = np.random.default_rng([plan.config.seed, 7, b])
        acct = plan.acct[lo:hi]
        src = plan.src[lo:hi]
        u = rs.random(n)
        dom = np.where(
            u < 0.6,
            plan.dom1[acct],
            np.where(u < 0.8, plan.dom2[acct], rs.integers(0, len(DOMAINS), size=n)),
        )
        model = np.where(
            rs.random(n) < 0.85, plan.model_pref[acct], rs.choice(len(MODELS), size=n, p=MODEL_P)
        )
        prompts = self._prompts(
            random.Random(plan.config.seed * 1_000_003 + b), acct, src, plan.item[lo:hi], dom
        )
        ips = self._ips(rs, acct)
        stamps = np.datetime_as_string((plan.ts[lo:hi] + self.start_epoch).astype("datetime64[s]"), unit="s")
        w = plan.id_width
        block = {
            "exchange_id": [f"ex_{i:0{self.ex_width}d}" for i in range(lo, hi)],
            "account_id": [f"acct_{k:0{w}d}" for k in plan.public_num[acct].tolist()],
            "timestamp": [s + "Z" for s in stamps.tolist()],
            "prompt": prompts,
            "model": [MODELS[m] for m in model.tolist()],
            "ip": ips,
        }
        if plan.infra is not None:
            # Its own generator, so the columns above draw exactly what they draw without it.
            block.update(plan.infra.columns(np.random.default_rng([plan.config.seed, 11, b]), acct))
        return block

    def _ips(self, rs: np.random.Generator, acct: np.ndarray) -> list[str]:
        plan = self.plan
        n = len(acct)
        mode = plan.ip_mode[acct]
        mobile = rs.random(n) < 0.15
        # int64 throughout: numpy refuses shifts mixing uint64 with Python ints.
        ip = np.where(mobile, plan.alt_ip[acct], plan.home_ip[acct]).astype(np.int64)
        pooled = plan.pool_base[acct].astype(np.int64) + rs.integers(0, 1 << 30, size=n) % plan.pool_size[
            acct
        ].astype(np.int64)
        ip = np.where(mode == 1, pooled, ip)
        rot = mode == 2
        if rot.any():
            prefix = plan.res_prefixes[rs.integers(0, len(plan.res_prefixes), size=n)].astype(np.int64)
            rotating = (prefix << 16) | rs.integers(256, 65535, size=n)
            ip = np.where(rot, rotating, ip)
        o1, o2, o3, o4 = (
            ((ip >> 24) & 255).tolist(),
            ((ip >> 16) & 255).tolist(),
            ((ip >> 8) & 255).tolist(),
            (ip & 255).tolist(),
        )
        return [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(o1, o2, o3, o4, strict=True)]

    def _prompts(
        self, rnd: random.Random, acct: np.ndarray, src: np.ndarray, item: np.ndarray, dom: np.ndarray
    ) -> list[str]:
        plan = self.plan
        camps = plan.campaigns
        camp_of = plan.camp_of[acct].tolist()
        organic = self.organic
        out: list[str] = []
        append = out.append
        content, volume = self.content, self.volume
        for a, s, it, d, ci in zip(acct.tolist(), src.tolist(), item.tolist(), dom.tolist(), camp_of, strict=True):
            if s == ORGANIC or s == COVER:
                if rnd.random() < _GENERIC_P:
                    append(rnd.choice(V.GENERIC_PROMPTS))
                    continue
                # Users paste their own text (code, drafts, documents), power users most of all:
                # such prompts are their own, not a combination of a few stock slot values.
                p_content = _CONTENT_P_HEAVY if volume[a] >= _HEAVY_EXCHANGES else _CONTENT_P
                templates = content[d] if rnd.random() < p_content else organic[d]
                append(organic_noise(templates[int(rnd.random() * len(templates))].render(rnd), rnd))
                continue
            if s == VIRAL:
                append(self._viral(rnd, it))
                continue
            if s == APP:
                append(self.apps[it].render(rnd))
                continue
            if s == BANK:
                # An ordinary user pasting a question from a public benchmark bank, sometimes retyped.
                text = plan.banks[it // BANK_STRIDE][it % BANK_STRIDE]
                append(organic_noise(text, rnd) if rnd.random() < 0.3 else text)
                continue
            camp = camps[ci]
            if s == COPY:
                text = ring_perturb(camp.pool[it], rnd)
            elif s == SWEEP:
                assert camp.template is not None
                space = camp.template.space()
                text = camp.template.render_combo(rnd, (it * camp.combo_mult + camp.combo_off) % space)
            elif s == COT:
                phrasing, before = camp.phrasings[int(rnd.random() * len(camp.phrasings))]
                # A campaign drawing on a public bank asks its questions; others make up their own.
                q = camp.pool[it] if camp.pool else reasoning_question(rnd)
                text = f"{phrasing}\n\n{q}" if before else f"{q}\n\n{phrasing}"
                if rnd.random() < 0.3:
                    text = organic_noise(text, rnd)
            else:
                task = camp.tasks[int(rnd.random() * len(camp.tasks))]
                text = f"{camp.preamble}\n\n{task.render(rnd)}"
            if len(camp.examples) < 5:
                camp.examples.append(text)
            append(text)
        return out

    def _viral(self, rnd: random.Random, v: int) -> str:
        text, tails = V.VIRAL_PROMPTS[v]
        u = rnd.random()
        # Most people paste it untouched; some tweak the last line, trim it or add their own ask.
        tail = tails[0] if u < 0.6 else rnd.choice(tails)
        prompt = text.replace("{{", "{").replace("}}", "}").replace("{tail}", tail).strip()
        u = rnd.random()
        if u < 0.08:
            prompt = prompt.lower()
        elif u < 0.16:
            prompt = prompt + "\n\n" + question(rnd)
        elif u < 0.22:
            prompt = organic_noise(prompt, rnd)
        return prompt
