"""Labelled traffic scenarios for ``bench/detect_eval.py``: JSONL exchanges plus a truth file.

Two scenarios, each written as ``<dir>/traffic.jsonl`` and ``<dir>/traffic.truth.json``; the truth
has the shape of ``copyhound synth``'s (``campaigns``, ``viral``, ``single_app``, ``accounts``):

* ``synth``: ``synth.generator.write_synth`` traffic (its own generator and truth).
* ``demo``: the same generator with ``copyhound demo``'s seed: exactly the demo's traffic.
* ``corpora``: organic traffic made from the real prompt corpora in ``../shared/corpora`` and planted
  campaigns made from corpora that the organic traffic does *not* use, so that no campaign prompt
  has an organic twin by construction (see :func:`build_corpora`).

Everything here depends only on the seed: the same seed writes byte-identical files, so a
workspace built from them can be reused across runs (re-ingesting the same file is a no-op).
"""

from __future__ import annotations

import gzip
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.common import CORPORA, perturb

log = logging.getLogger(__name__)

START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 30
_HOUR = 3600
_DAY = 86_400
# Local-time activity of people (hour 0..23): quiet at night, peaks late morning and evening.
_DIURNAL = np.array([1, .6, .4, .3, .3, .5, 1.2, 2.5, 4, 5, 5.5, 5.5, 5, 5, 5, 4.8, 4.6, 4.5, 4.6, 5, 5.2, 4.6, 3.4, 2])
_DIURNAL = _DIURNAL / _DIURNAL.sum()
_TZ = (-8, -7, -6, -5, -3, 0, 1, 2, 3, 5, 8, 9, 10)
MODELS = ("hound-4", "hound-4-mini", "hound-4-reasoning")

# Reasoning-elicitation phrasings written for this benchmark. They are deliberately *not* the
# phrasings of engine/detect/elicitation.py (the detector's exemplars) nor synth/vocab.py (the
# synthetic generator's), and about a third carry none of the detector's cue words (step, reason,
# think, explain, show, ...): a detector that only knows its own exemplars should miss those.
COT_PHRASINGS: tuple[str, ...] = (
    "Talk me through how you would crack this, piece by piece, and only then tell me the result.",
    "I care more about the route than the destination here: lay out each move in your logic.",
    "Don't jump to the conclusion. Start from first principles and build up, narrating as you go.",
    "Answer the question below, but precede your answer with a numbered derivation.",
    "Please be explicit about every inference you make on the way to your answer.",
    "Give me your scratchpad: all the rough working first, then a clean final answer.",
    "Pretend you're a tutor showing a student how to get there; reveal every intermediate stage.",
    "Decompose this into sub-questions, answer each one in turn, and then combine them.",
    "Spell out the logic linking the premises to your conclusion, line by line.",
    "Before the answer, write a section titled 'Deliberation' that documents everything you considered.",
    "Verbalise your internal deliberation in full before committing to an answer.",
    "Unpack your thinking completely: what you considered, what you ruled out, and why.",
    "Make your logic transparent; every claim should follow from the one before it.",
    "Trace the path from the question to the answer and leave nothing implicit.",
    "Work it out longhand, the way you would on a whiteboard, before giving the answer.",
    "I need to audit your logic, so document each deduction before you give the verdict.",
    "Begin with 'Let me reason about this.' and keep going until you are certain, then answer.",
    "Provide a rigorous, itemised justification first; the answer goes last.",
    "Respond in two parts: (1) your complete deliberation, (2) the final answer.",
    "Narrate your problem-solving process as if recording it for a lecture, then conclude.",
)

# cot-D: one core per account, dressed with a random opener and closer per prompt.
COT_OWN_CORES: tuple[str, ...] = (
    "lay out the chain of inferences that leads you to the answer.",
    "document your working in full before stating the result.",
    "go through the problem methodically, writing down each intermediate conclusion.",
    "describe how you arrive at the answer, covering every stage along the way.",
    "write the complete derivation first and the answer after it.",
    "narrate what goes through your mind from start to finish as you solve it.",
)
COT_OPENERS: tuple[str, ...] = ("", "please", "for this one,", "important:", "before answering,", "as usual,")
COT_CLOSERS: tuple[str, ...] = ("", " Thanks.", " Then answer.", " Keep the final answer short.", " No shortcuts.")

# Low-and-slow preambles written for this benchmark (not synth/vocab.py's annotator ones).
SLOW_PREAMBLES: tuple[str, ...] = (
    "You are helping a research team build an evaluation set for conversational agents. For the request "
    "below, write the ideal reply a careful expert would give, then rate the request's difficulty from 1 "
    "to 5 and name the main skill it tests. Keep the reply under 200 words.",
    "Context: we are compiling gold-standard answers for an internal benchmark. Read the request that "
    "follows and answer it as completely and accurately as you can. After the answer, add a line "
    "'Category:' with one of factual, creative, coding, advice or other.",
    "Reviewer mode. For the request below, draft the best response you can, critique your draft in two "
    "short bullet points, and then give a revised final version. Do not mention these instructions.",
)


@dataclass
class _Builder:
    """Accumulates exchanges and truth for one scenario."""

    rng: random.Random
    rows: list[tuple[str, int, str, str]] = field(default_factory=list)  # (account, ts, prompt, model)
    labels: dict[str, str | None] = field(default_factory=dict)
    campaigns: list[dict] = field(default_factory=list)
    viral: list[dict] = field(default_factory=list)
    single_app: list[dict] = field(default_factory=list)
    tz: dict[str, int] = field(default_factory=dict)

    def account(self, name: str, label: str | None) -> str:
        self.labels[name] = label
        self.tz[name] = self.rng.choice(_TZ)
        return name

    def send(self, account: str, ts: int, prompt: str) -> None:
        self.rows.append((account, int(ts), prompt, self.rng.choice(MODELS)))

    # ---- timestamps (seconds since START)
    def human_ts(self, account: str, lo_day: float = 0, hi_day: float = DAYS) -> int:
        """A time a person in the account's time zone would plausibly be typing."""
        day = int(self.rng.uniform(lo_day, hi_day))
        local_hour = int(np.searchsorted(np.cumsum(_DIURNAL), self.rng.random()))
        utc_hour = (local_hour - self.tz[account]) % 24
        ts = day * _DAY + utc_hour * _HOUR + self.rng.randrange(_HOUR)
        return min(max(ts, 0), DAYS * _DAY - 1)

    def machine_ts(self, lo_day: float, hi_day: float) -> int:
        """A time a script would send at: any hour, uniform over the window."""
        return int(self.rng.uniform(lo_day * _DAY, hi_day * _DAY))


@dataclass
class _Planted:
    """One planted campaign's sends: counted, the first three kept as examples for the truth file."""

    builder: _Builder
    n: int = 0
    examples: list[str] = field(default_factory=list)

    def send(self, account: str, ts: int, text: str) -> None:
        self.builder.send(account, ts, text)
        self.n += 1
        if len(self.examples) < 3:
            self.examples.append(text)


def _read(name: str) -> list[dict]:
    path = CORPORA / f"{name}.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _take(pool: list, n: int) -> list:
    """Pop ``n`` items from the end of a pre-shuffled pool (so every campaign gets unused items)."""
    if n <= 0:
        return []  # pool[-0:] would be the whole pool
    if n > len(pool):
        raise ValueError(f"pool exhausted: need {n}, have {len(pool)}")
    out = pool[-n:]
    del pool[-n:]
    return out


def build_corpora(out_dir: Path, *, seed: int = 0, n_organic_accounts: int = 2000) -> dict:
    """Write the corpora scenario to ``out_dir/traffic.jsonl`` and its truth; return the truth.

    Organic (label None): sharegpt_first_turns (3,000 sampled), arena_hard (1,000), hh_rlhf_openings
    (all 2,312 rows, whose verbatim repeats land on different accounts: organic sharing),
    instructionwild_en, awesome_chatgpt_prompts (less the viral ones); spread over
    ``n_organic_accounts`` accounts with Pareto volumes (a few send hundreds, most send one or two),
    10 % of a heavy user's sends re-sending one of its own prompts, at diurnal local times.

    Hard negatives: 8 viral prompts (4 jailbreaks, 4 awesome prompts) each pasted by 100-160 random
    organic accounts, half verbatim and half lightly edited; 2 single-account template apps (one T0
    template, ~300 and ~150 sends, around the clock).

    Campaigns, three or four instances per kind, built from corpora not used above: copy_ring
    (alpaca_5k, code_alpaca_2k; each question sent by 2-4 ring accounts, every send perturbed),
    template_sweep (T0 templates split between accounts, no account repeating a prompt; sweep-D is the
    one-word-anchor template xsum_summarize_DOC), cot_elicitation (gpteacher and alpaca questions
    wrapped in :data:`COT_PHRASINGS`, a disjoint subset per instance), low_slow (accounts each sending 5-20 prompts
    behind one of :data:`SLOW_PREAMBLES`, over the whole month, among organic-looking prompts).
    Campaign accounts also send some ordinary prompts from the organic pool (cover).
    """
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    b = _Builder(rng)

    # ---------------------------------------------------------------- organic pool
    sharegpt = [r["text"] for r in _read("sharegpt_first_turns")]
    arena = [r["text"] for r in _read("arena_hard")]
    hh = [r["text"] for r in _read("hh_rlhf_openings")]
    wild = [r["text"] for r in _read("instructionwild_en")]
    awesome = [r["text"] for r in _read("awesome_chatgpt_prompts")]
    rng.shuffle(sharegpt)
    rng.shuffle(arena)
    rng.shuffle(awesome)
    viral_awesome = [t for t in awesome if 300 <= len(t) <= 1500][:4]
    awesome = [t for t in awesome if t not in set(viral_awesome)]
    organic_pool = sharegpt[:3000] + arena[:1000] + hh + wild + awesome
    rng.shuffle(organic_pool)

    # Campaign accounts' cover traffic comes out of the same pool first.
    def cover(n: int) -> list[str]:
        return _take(organic_pool, n)

    # ---------------------------------------------------------------- campaigns
    alpaca = [r["text"] for r in _read("alpaca_5k")]
    code = [r["text"] for r in _read("code_alpaca_2k")]
    # Over half of gpteacher is its "toolformer: enabled ..." tool-use subset, one template with a long
    # fixed header: campaigns built from it would be linked by that header, not by what they plant.
    gpteacher = [r["text"] for r in _read("gpteacher")
                 if 20 <= len(r["text"]) <= 600 and not r["text"].startswith("toolformer")]
    for pool in (alpaca, code, gpteacher):
        rng.shuffle(pool)
    t0_by_group: dict[str, list[str]] = {}
    for r in _read("t0_templates"):
        t0_by_group.setdefault(r["group"], []).append(r["text"])
    # Templates are drawn with their own generator, so that they do not change when other parts of
    # the scenario do; xsum_summarize_DOC ("Summarize: {article}": a one-word anchor, a long variable
    # part) is kept out of the draw and planted on purpose as sweep-D, the hardest template kind.
    hard_template = "xsum_summarize_DOC"
    groups = sorted(g for g, v in t0_by_group.items() if len(set(v)) >= 200 and g != hard_template)
    random.Random(seed + 7).shuffle(groups)
    # Several T0 templates render the same data set (ag_news_classify and ag_news_which_section_choices
    # wrap the same articles), and accounts sending the same articles are rightly linked; so every
    # template planted here comes from a different data set (the group name's first two words).
    seen_sets: set[str] = {"_".join(hard_template.split("_")[:2])}

    def next_group() -> str:
        while True:
            g = groups.pop()
            key = "_".join(g.split("_")[:2])
            if key not in seen_sets:
                seen_sets.add(key)
                return g

    n_camp_acc = 0

    def camp_accounts(cid: str, n: int) -> list[str]:
        nonlocal n_camp_acc
        out = [b.account(f"c{n_camp_acc + i}", cid) for i in range(n)]
        n_camp_acc += n
        return out

    def add_campaign(cid: str, kind: str, accts: list[str], sent: _Planted, n_cover: int, desc: str) -> None:
        b.campaigns.append({"campaign_id": cid, "kind": kind, "accounts": accts, "exchanges": sent.n + n_cover,
                            "cover_exchanges": n_cover, "description": desc,
                            "example_prompts": sent.examples})

    def add_cover(accts: list[str], lo: int, hi: int) -> int:
        n = 0
        for a in accts:
            for text in cover(rng.randint(lo, hi)):
                b.send(a, b.human_ts(a), text)
                n += 1
        return n

    # copy_ring: (id, accounts, questions, source, copies per question lo-hi, synced bursts, days)
    copy_specs = [("copy-A", 6, 120, alpaca, (3, 3), True, 5), ("copy-B", 12, 200, code, (2, 4), False, 14),
                  ("copy-C", 4, 50, alpaca, (2, 2), False, 30)]
    for cid, n_acc, n_q, src, (lo, hi), synced, days in copy_specs:
        accts = camp_accounts(cid, n_acc)
        lo_day = rng.uniform(0, DAYS - days)
        bursts = [b.machine_ts(lo_day, lo_day + days) for _ in range(12)]
        sent = _Planted(b)
        for q in _take(src, n_q):
            for a in rng.sample(accts, rng.randint(lo, hi)):
                text, _ = perturb(q, rng, n_ops=rng.randint(1, 3))
                ts = rng.choice(bursts) + rng.randrange(_HOUR) if synced else b.human_ts(a, lo_day, lo_day + days)
                sent.send(a, ts, text)
        add_campaign(cid, "copy_ring", accts, sent, add_cover(accts, 0, 5),
                     f"{n_q} questions each sent by {lo}-{hi} of {n_acc} accounts, perturbed "
                     f"({'synchronised bursts' if synced else 'independent timing'}, {days} days)")

    # template_sweep: (id, accounts, templates, prompts per template, days)
    sweep_specs = [("sweep-A", 10, 1, 200, 3), ("sweep-B", 12, 2, 200, 7), ("sweep-C", 5, 1, 100, 2),
                   ("sweep-D", 8, 1, 160, 4)]
    for cid, n_acc, n_t, per_t, days in sweep_specs:
        accts = camp_accounts(cid, n_acc)
        lo_day = rng.uniform(0, DAYS - days)
        sent, used = _Planted(b), []
        for _ in range(n_t):
            g = hard_template if cid == "sweep-D" else next_group()
            used.append(g)
            texts = list(dict.fromkeys(t0_by_group[g]))
            rng.shuffle(texts)
            for i, text in enumerate(texts[:per_t]):  # round-robin: no account repeats a prompt
                sent.send(accts[i % n_acc], b.machine_ts(lo_day, lo_day + days), text)
        add_campaign(cid, "template_sweep", accts, sent, add_cover(accts, 0, 4),
                     f"T0 template(s) {', '.join(used)}: {per_t} fillings each, split between {n_acc} accounts")

    # cot_elicitation: (id, accounts, questions per account, source, phrasings, days). Each instance has
    # its own phrasings: separate operators do not share wording, so their rings should stay apart.
    cot_specs = [("cot-A", 8, 50, gpteacher, COT_PHRASINGS[:8], 10), ("cot-B", 4, 30, alpaca, COT_PHRASINGS[8:13], 20),
                 ("cot-C", 15, 40, "mixed", COT_PHRASINGS[13:], 14)]
    for cid, n_acc, per_acc, src, phrasings, days in cot_specs:
        accts = camp_accounts(cid, n_acc)
        n_phr = len(phrasings)
        lo_day = rng.uniform(0, DAYS - days)
        sent = _Planted(b)
        for a in accts:
            qs = _take(src, per_acc) if src != "mixed" else _take(gpteacher, per_acc // 2) + _take(alpaca, per_acc - per_acc // 2)
            for q in qs:
                p = rng.choice(phrasings)
                mode = rng.randrange(4)
                text = (p + "\n\n" + q if mode == 0 else q + "\n\n" + p if mode == 1
                        else f"{p}\nQuestion: {q}" if mode == 2 else f"{q} {p}")
                sent.send(a, b.machine_ts(lo_day, lo_day + days), text)
        add_campaign(cid, "cot_elicitation", accts, sent, add_cover(accts, 0, 4),
                     f"{per_acc} distinct questions per account wrapped in {n_phr} own elicitation phrasings")

    # cot-D: every account words its demand in its own way (its own core, varied openers and closers),
    # so no phrasing is shared between accounts: only the elicitation detector itself can find it.
    accts = camp_accounts("cot-D", len(COT_OWN_CORES))
    lo_day = rng.uniform(0, DAYS - 14)
    sent = _Planted(b)
    for a, core in zip(accts, COT_OWN_CORES, strict=True):
        for q in _take(gpteacher, 30):
            demand = (rng.choice(COT_OPENERS) + " " + core + rng.choice(COT_CLOSERS)).strip()
            demand = demand[0].upper() + demand[1:]
            text = demand + "\n\n" + q if rng.random() < 0.5 else q + "\n\n" + demand
            sent.send(a, b.machine_ts(lo_day, lo_day + 14), text)
    add_campaign("cot-D", "cot_elicitation", accts, sent, add_cover(accts, 0, 4),
                 "30 distinct questions per account, each account with its own elicitation wording "
                 "(no phrasing shared between accounts)")

    # low_slow: (id, accounts, preamble); each account 5-20 campaign prompts over the month
    slow_specs = [("slow-A", 60, 0), ("slow-B", 25, 1), ("slow-C", 12, 2)]
    for cid, n_acc, k in slow_specs:
        accts = camp_accounts(cid, n_acc)
        pre = SLOW_PREAMBLES[k]
        sent = _Planted(b)
        for a in accts:
            for q in _take(gpteacher, rng.randint(5, 20)):
                text = pre + rng.choice(("\n\n", "\n\nRequest: ", "\n")) + q
                sent.send(a, b.human_ts(a), text)
        add_campaign(cid, "low_slow", accts, sent, add_cover(accts, 3, 15),
                     f"{n_acc} accounts each sending 5-20 prompts behind one preamble over {DAYS} days")

    # ---------------------------------------------------------------- organic accounts
    organic = [b.account(f"o{i}", None) for i in range(n_organic_accounts)]
    weights = np.minimum(nrng.pareto(1.1, n_organic_accounts) + 1.0, 400.0)
    n_rows = len(organic_pool)
    extra = nrng.multinomial(n_rows - n_organic_accounts, weights / weights.sum())
    volume = extra + 1
    cursor = 0
    for a, v in zip(organic, volume.tolist(), strict=True):
        own = organic_pool[cursor:cursor + v]
        cursor += v
        for text in own:
            b.send(a, b.human_ts(a), text)
        if v >= 20:  # heavy users re-send some of their own prompts
            for text in rng.sample(own, v // 10):
                b.send(a, b.human_ts(a), text)

    # ---------------------------------------------------------------- viral prompts
    jail = [r["text"] for r in _read("jailbreaks") if 500 <= len(r["text"]) <= 3000]
    rng.shuffle(jail)
    for i, text in enumerate(jail[:4] + viral_awesome):
        senders = rng.sample(organic, rng.randint(100, 160))
        n = 0
        for a in senders:
            for _ in range(1 if rng.random() < 0.85 else 2):
                sent = text if rng.random() < 0.5 else perturb(
                    text, rng, ops=tuple(rng.sample(("greeting", "signoff", "typos", "spacing", "punctuation", "case"),
                                                    rng.randint(1, 2))))[0]
                b.send(a, b.human_ts(a), sent)
                n += 1
        b.viral.append({"viral_id": f"viral-{i + 1:02d}", "text": text, "accounts": sorted(senders), "exchanges": n})

    # ---------------------------------------------------------------- single-account template apps
    for k, n_send in enumerate((300, 150)):
        g = next_group()
        a = b.account(f"app{k}", None)
        texts = list(dict.fromkeys(t0_by_group[g]))[: min(200, n_send)]
        for j in range(n_send):
            b.send(a, b.machine_ts(0, DAYS), texts[j] if j < len(texts) else rng.choice(texts))
        b.single_app.append({"account": a, "template": g, "exchanges": n_send})

    return _write(out_dir, b, seed)


def _write(out_dir: Path, b: _Builder, seed: int) -> dict:
    """Shuffle account names into opaque ids, write traffic (time order) and truth atomically."""
    rng = random.Random(seed + 1)
    names = sorted(b.labels)
    ids = [f"u{n:05d}" for n in rng.sample(range(10_000, 100_000), len(names))]
    rename = dict(zip(names, ids, strict=True))
    rows = sorted(b.rows, key=lambda r: (r[1], r[0], r[2]))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "traffic.jsonl"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for i, (acc, ts, prompt, model) in enumerate(rows):
            fh.write(json.dumps({"exchange_id": f"x{i:07d}", "account_id": rename[acc],
                                 "timestamp": (START + timedelta(seconds=ts)).isoformat(),
                                 "prompt": prompt, "model": model}, ensure_ascii=False) + "\n")
    tmp.replace(path)
    truth = {
        "config": {"scenario": "corpora", "seed": seed, "exchanges": len(rows), "start": START.isoformat(),
                   "days": DAYS},
        "campaigns": [{**c, "accounts": sorted(rename[a] for a in c["accounts"])} for c in b.campaigns],
        "viral": [{**v, "accounts": sorted(rename[a] for a in v["accounts"])} for v in b.viral],
        "single_app": [{**s, "account": rename[s["account"]]} for s in b.single_app],
        "accounts": {rename[a]: b.labels[a] for a in names},
    }
    tpath = out_dir / "traffic.truth.json"
    ttmp = tpath.with_name(tpath.name + ".tmp")
    ttmp.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    ttmp.replace(tpath)
    log.info("corpora scenario: %d exchanges, %d accounts, %d distinct prompts -> %s", len(rows), len(names),
             len({r[2] for r in rows}), path)
    return truth


def build_synth(out_dir: Path, *, exchanges: int = 20_000, seed: int = 1) -> dict:
    """``copyhound synth`` traffic (``exchanges`` rows, ``seed``) and its own truth file."""
    from synth import SynthConfig, write_synth

    out_dir.mkdir(parents=True, exist_ok=True)
    res = write_synth(SynthConfig(exchanges=exchanges, seed=seed), out_dir / "traffic.jsonl")
    return json.loads(res.truth_path.read_text(encoding="utf-8"))


def build_demo(out_dir: Path) -> dict:
    """The traffic of ``copyhound demo`` (its size and seed), with its truth."""
    from engine.cli.demo import DEMO_SEED

    return build_synth(out_dir, exchanges=20_000, seed=DEMO_SEED)


SCENARIOS = {"synth": build_synth, "demo": build_demo, "corpora": build_corpora}


def build(name: str, out_dir: Path, **kwargs) -> tuple[Path, dict]:
    """Write scenario ``name`` into ``out_dir`` unless its files are there; return (traffic, truth)."""
    traffic, truth_path = out_dir / "traffic.jsonl", out_dir / "traffic.truth.json"
    if not (traffic.exists() and truth_path.exists()):
        SCENARIOS[name](out_dir, **kwargs)
    return traffic, json.loads(truth_path.read_text(encoding="utf-8"))
