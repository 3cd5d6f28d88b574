"""Synthetic provider traffic with planted distillation campaigns and their ground truth.

The generator works in two phases so that memory stays bounded at millions of rows:

1. **Plan** (numpy, vectorised): decide every account, how many prompts it sends, when, and *what
   kind* of prompt each row is (organic, viral, app, or one of the campaign kinds, plus an item
   number for campaign rows). The plan is a handful of integer arrays, about 20 bytes a row.
2. **Render** (pure Python, in blocks of ``BLOCK_ROWS`` rows in time order): turn each planned row
   into text from precompiled templates, with one ``random.Random`` per block so the output only
   depends on the seed.

What is planted (labelled in the truth file) and what is a hard negative (organic, not a campaign):

* ``copy_ring``: a pool of benchmark-like questions, each sent by several ring accounts, each send
  lightly perturbed (typos, Cyrillic homoglyphs, zero-width characters, case, spacing, greetings).
* ``template_sweep``: one long fixed template swept over distinct slot values, split between
  accounts so no account repeats a prompt; some templates carry a 100+ word variable passage.
* ``cot_elicitation``: distinct reasoning questions wrapped in many phrasings that demand the full
  chain of thought, before or after the question.
* ``low_slow``: many accounts, each sending a handful of prompts that share an annotator preamble,
  spread over most of the period.
* Hard negatives: viral prompts pasted by hundreds of unrelated accounts, single-account template
  apps with high volume, generic short prompts that recur everywhere, heavy organic users.

Campaign accounts also send a little ordinary traffic ("cover"), and their ids look exactly like
organic ids: ids are a random permutation over all accounts.

Profiles (``SynthConfig.profile``): ``default`` is all of the above, in the six ``COLUMNS``; its output
for a seed never changes. ``season`` (`synth.season`) imitates a reported season of distillation at
scale: with 1M exchanges, ~50 campaigns of the same four kinds with 2 to a few hundred accounts each
(a few thousand campaign accounts among ~170k organic ones; ten times that at 10M); a few public
banks of benchmark-like questions that several copy-ring and chain-of-thought campaigns share and
that ~3 % of organic users paste 1-3 questions from (``bank_bystanders`` in the truth); heavy-tailed
campaign accounts (thin: 2-5 exchanges, heavy: hundreds to thousands) of which ~30 % are diluted
(campaign rows under half of what they send); dozens to hundreds of single-account template
integrations (organic); and three more columns, ``META_COLUMNS`` (client, key_created, payment),
whose campaign traces are strong, medium or absent per campaign (`synth.infra`). Its truth adds
``config.profile``, ``banks``, ``account_shapes`` (diluted, thin, heavy or regular per campaign
account), ``bank_bystanders``, and ``bank`` and ``infra`` on each campaign.

The package in modules: `synth.config` (what to generate), `synth.plan` (phase 1), `synth.render`
(phase 2), `synth.texts` (templates, noise, campaign questions) over `synth.vocab` (the word lists),
`synth.season` and `synth.infra` (the season profile's plan and its request metadata);
this module runs the two phases, writes the files and the truth.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path

import numpy as np

from synth.config import BLOCK_ROWS, COLUMNS, KINDS, MODELS, SUFFIXES, SynthConfig
from synth.plan import APP, VIRAL, Plan
from synth.render import Renderer
from synth.season import SeasonPlan

log = logging.getLogger(__name__)

__all__ = [
    "BLOCK_ROWS", "COLUMNS", "KINDS", "MODELS", "SUFFIXES", "CampaignTruth", "SingleAppTruth", "SynthConfig",
    "SynthResult", "ViralTruth", "iter_blocks", "iter_exchanges", "truth_path_for", "write_synth",
]


@dataclass(frozen=True)
class CampaignTruth:
    """One planted campaign: its accounts and how many rows they sent.

    ``exchanges`` counts every row of the campaign's accounts; ``cover_exchanges`` of those are
    ordinary-looking prompts the accounts sent besides the campaign pattern.
    """

    campaign_id: str
    kind: str
    accounts: tuple[str, ...]
    exchanges: int
    description: str
    example_prompts: tuple[str, ...]
    cover_exchanges: int = 0
    # Season profile only (absent from the default truth): the public bank the campaign draws its
    # questions from, and how much its infrastructure gives away ("strong", "medium", "none").
    bank: str | None = None
    infra: str | None = None


@dataclass(frozen=True)
class ViralTruth:
    """A popular prompt pasted (sometimes lightly edited) by many unrelated organic accounts."""

    viral_id: str
    text: str
    accounts: tuple[str, ...]
    exchanges: int


@dataclass(frozen=True)
class SingleAppTruth:
    """One organic customer account that sends one template at high volume."""

    account: str
    template: str
    exchanges: int


@dataclass(frozen=True)
class SynthResult:
    """Where the traffic and its truth were written, and what they hold."""

    path: Path
    truth_path: Path
    exchanges: int
    accounts: int
    campaigns: tuple[CampaignTruth, ...]
    viral: tuple[ViralTruth, ...] = ()
    single_app: tuple[SingleAppTruth, ...] = ()
    elapsed_s: float = 0.0


def truth_path_for(out: Path) -> Path:
    """``traffic.jsonl.gz`` -> ``traffic.truth.json`` beside it."""
    name = out.name
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = out.stem
    return out.with_name(name + ".truth.json")


class _Run:
    """One generation: plan, rendered blocks, and the truth once every block has rendered."""

    def __init__(self, config: SynthConfig) -> None:
        config.check()
        self.plan = SeasonPlan(config) if config.profile == "season" else Plan(config)
        self.renderer = Renderer(self.plan)

    def account_id(self, a: int) -> str:
        return f"acct_{int(self.plan.public_num[a]):0{self.plan.id_width}d}"

    def campaigns(self) -> tuple[CampaignTruth, ...]:
        return tuple(
            CampaignTruth(
                campaign_id=c.cid,
                kind=c.kind,
                accounts=tuple(sorted(self.account_id(a) for a in c.accounts.tolist())),
                exchanges=c.pattern_rows + c.cover_rows,
                description=f"{c.description} ({len(c.accounts)} accounts, "
                f"{'synchronised bursts' if c.synced else 'independent timing'}, "
                f"{('residential', 'datacenter pool', 'rotating proxies')[c.ip_mode]} IPs)",
                example_prompts=tuple(c.examples),
                cover_exchanges=c.cover_rows,
                **(self.plan.campaign_extras(c.cid) if isinstance(self.plan, SeasonPlan) else {}),
            )
            for c in self.plan.campaigns
        )

    def virals(self) -> tuple[ViralTruth, ...]:
        out = []
        for i, v in enumerate(self.plan.virals):
            text = v.text.replace("{{", "{").replace("}}", "}").replace("{tail}", v.tails[0]).strip()
            n = int(np.count_nonzero((self.plan.src == VIRAL) & (self.plan.item == i)))
            accts = tuple(sorted(self.account_id(a) for a in v.accounts.tolist()))
            out.append(ViralTruth(f"viral-{i + 1:02d}", text, accts, n))
        return tuple(out)

    def single_apps(self) -> tuple[SingleAppTruth, ...]:
        plan = self.plan
        n = np.bincount(plan.acct[plan.src == APP] - plan.app_base, minlength=plan.n_app)
        idx = plan.app_template_idx if plan.app_template_idx is not None else np.arange(plan.n_app)
        return tuple(
            SingleAppTruth(self.account_id(plan.app_base + k), plan.app_templates[int(idx[k])], int(n[k]))
            for k in range(plan.n_app)
        )

    def truth(self) -> dict[str, object]:
        plan = self.plan
        camps = self.campaigns()
        accounts: dict[str, str | None] = {}
        order = np.argsort(plan.public_num)
        for a in order.tolist():
            ci = int(plan.camp_of[a])
            accounts[self.account_id(a)] = plan.campaigns[ci].cid if ci >= 0 else None
        season = isinstance(plan, SeasonPlan)
        config: dict[str, object] = {
            "exchanges": plan.config.exchanges,
            "seed": plan.config.seed,
            "start": plan.config.start.isoformat(),
            "days": plan.config.days,
            "campaign_share": plan.config.campaign_share,
        }
        campaigns = [asdict(c) for c in camps]
        if not season:
            # The default truth keeps its original keys, byte for byte.
            for c in campaigns:
                del c["bank"], c["infra"]
        out: dict[str, object] = {
            "config": config,
            "campaigns": campaigns,
            "viral": [asdict(v) for v in self.virals()],
            "single_app": [asdict(s) for s in self.single_apps()],
            "accounts": accounts,
        }
        if season:
            config["profile"] = plan.config.profile
            out.update(plan.truth_extras(self.account_id))
        return out


def iter_blocks(config: SynthConfig, block_rows: int = BLOCK_ROWS) -> Iterator[dict[str, list[str]]]:
    """Columnar blocks (``{column: list[str]}``), in time order.

    Columns as in ``COLUMNS``, followed by ``META_COLUMNS`` for the season profile.
    """
    yield from _Run(config).renderer.blocks(block_rows)


def iter_exchanges(config: SynthConfig) -> Iterator[dict[str, str]]:
    """One dict per exchange with the keys of `iter_blocks`' columns, in time order."""
    for block in iter_blocks(config):
        names = tuple(block)
        for values in zip(*(block[c] for c in names), strict=True):
            yield dict(zip(names, values, strict=True))


def write_synth(
    config: SynthConfig, out: Path, progress: Callable[[int, int], None] | None = None
) -> SynthResult:
    """Write ``config.exchanges`` rows to ``out`` (format from its suffix) and the truth beside it.

    Suffixes: ``.jsonl``, ``.jsonl.gz``, ``.csv``, ``.parquet``. Both files are written to a
    temporary name and moved into place, so a crash never leaves a half file under the real name.
    ``progress(done, total)`` is called after each block.
    """
    out = Path(out)
    fmt = next((s for s in sorted(SUFFIXES, key=len, reverse=True) if out.name.endswith(s)), None)
    if fmt is None:
        raise ValueError(f"unsupported output suffix for {out.name!r}; use one of {', '.join(SUFFIXES)}")
    t0 = time.perf_counter()
    run = _Run(config)
    total = config.exchanges
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = 0
    with _writer(fmt, tmp, run.plan.columns) as write:
        for block in run.renderer.blocks():
            write(block)
            done += len(block["exchange_id"])
            if progress is not None:
                progress(done, total)
            log.info("wrote %d/%d exchanges (%.1fs)", done, total, time.perf_counter() - t0)
    os.replace(tmp, out)
    truth_path = truth_path_for(out)
    truth = run.truth()
    tmp_truth = truth_path.with_name(truth_path.name + ".tmp")
    tmp_truth.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp_truth, truth_path)
    elapsed = time.perf_counter() - t0
    log.info("synth: %d exchanges, %d accounts -> %s in %.1fs", total, run.plan.n_accounts, out, elapsed)
    return SynthResult(
        path=out,
        truth_path=truth_path,
        exchanges=total,
        accounts=run.plan.n_accounts,
        campaigns=run.campaigns(),
        viral=run.virals(),
        single_app=run.single_apps(),
        elapsed_s=elapsed,
    )


class _writer:
    """Context manager giving ``write(block)`` for one output format."""

    def __init__(self, fmt: str, path: Path, columns: tuple[str, ...] = COLUMNS) -> None:
        self.fmt, self.path, self.columns = fmt, path, columns

    def __enter__(self) -> Callable[[dict[str, list[str]]], None]:
        if self.fmt in (".jsonl", ".jsonl.gz"):
            if self.fmt == ".jsonl":
                self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in __exit__
            else:
                # mtime=0 keeps the bytes identical across runs with the same seed.
                self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in __exit__
                self._fh = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=3, mtime=0)
            return self._write_jsonl if self.columns == COLUMNS else self._write_jsonl_meta
        # pyarrow only for the columnar formats: JSONL output (and `import synth`) needs numpy alone.
        import pyarrow as pa

        self._schema = pa.schema([(c, pa.string()) for c in self.columns])
        if self.fmt == ".csv":
            import pyarrow.csv as pacsv

            self._pw = pacsv.CSVWriter(str(self.path), self._schema)
        else:
            import pyarrow.parquet as pq

            self._pw = pq.ParquetWriter(str(self.path), self._schema, compression="zstd")
        return self._write_arrow

    def _write_jsonl(self, block: dict[str, list[str]]) -> None:
        # The other columns are plain ASCII made here; only the prompt needs JSON escaping, and the
        # C string encoder is several times faster than json.dumps per row.
        enc = encode_basestring
        lines = [
            f'{{"exchange_id":"{e}","account_id":"{a}","timestamp":"{t}","prompt":{enc(p)},'
            f'"model":"{m}","ip":"{i}"}}\n'
            for e, a, t, p, m, i in zip(*(block[c] for c in COLUMNS), strict=True)
        ]
        self._fh.write("".join(lines).encode("utf-8"))

    def _write_jsonl_meta(self, block: dict[str, list[str]]) -> None:
        enc = encode_basestring
        lines = [
            f'{{"exchange_id":"{e}","account_id":"{a}","timestamp":"{t}","prompt":{enc(p)},'
            f'"model":"{m}","ip":"{i}","client":{enc(c)},"key_created":"{k}","payment":"{y}"}}\n'
            for e, a, t, p, m, i, c, k, y in zip(*(block[c] for c in self.columns), strict=True)
        ]
        self._fh.write("".join(lines).encode("utf-8"))

    def _write_arrow(self, block: dict[str, list[str]]) -> None:
        import pyarrow as pa

        self._pw.write_table(pa.table(block, schema=self._schema))

    def __exit__(self, *exc: object) -> None:
        if self.fmt in (".jsonl", ".jsonl.gz"):
            self._fh.close()
            if self.fmt == ".jsonl.gz":
                self._raw.close()
        else:
            self._pw.close()
