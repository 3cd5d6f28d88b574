"""Tests for the synthetic traffic generator: shape, determinism, formats and planted truth."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import duckdb
import pytest

from synth import vocab as V
from synth.generator import (
    COLUMNS,
    KINDS,
    SynthConfig,
    iter_exchanges,
    truth_path_for,
    write_synth,
)

N = 20_000
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\ufeff\u2060]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, str]], dict, object]:
    """The default 20k config written once as JSONL: (rows, truth, SynthResult)."""
    out = tmp_path_factory.mktemp("synth") / "traffic.jsonl"
    result = write_synth(SynthConfig(exchanges=N, seed=0), out)
    with out.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    truth = json.loads(result.truth_path.read_text(encoding="utf-8"))
    return rows, truth, result


def _by_campaign(rows: list[dict[str, str]], truth: dict) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        cid = truth["accounts"][r["account_id"]]
        if cid is not None:
            out[cid].append(r)
    return out


def _kind_rows(rows: list[dict[str, str]], truth: dict, kind: str) -> dict[str, list[dict[str, str]]]:
    ids = {c["campaign_id"] for c in truth["campaigns"] if c["kind"] == kind}
    return {cid: rs for cid, rs in _by_campaign(rows, truth).items() if cid in ids}


def test_row_count_columns_and_ids(default_run) -> None:
    rows, _truth, result = default_run
    assert len(rows) == N == result.exchanges
    assert all(tuple(r) == COLUMNS for r in rows)
    assert len({r["exchange_id"] for r in rows}) == N
    assert len({r["account_id"] for r in rows}) == result.accounts
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["timestamp"]) for r in rows)
    assert min(r["timestamp"] for r in rows) >= "2026-09-01T00:00:00Z"
    assert max(r["timestamp"] for r in rows) < "2026-10-01T00:00:00Z"
    assert all(re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", r["ip"]) for r in rows)
    assert 2 <= len({r["model"] for r in rows}) <= 6


def test_jsonl_is_deterministic_and_seed_matters(tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.jsonl" for name in ("a", "b", "c")]
    write_synth(SynthConfig(exchanges=4000, seed=7), paths[0])
    write_synth(SynthConfig(exchanges=4000, seed=7), paths[1])
    write_synth(SynthConfig(exchanges=4000, seed=8), paths[2])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert truth_path_for(paths[0]).read_bytes() == truth_path_for(paths[1]).read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


@pytest.mark.parametrize(
    ("suffix", "reader"),
    [(".jsonl", "read_json"), (".jsonl.gz", "read_json"), (".csv", "read_csv"), (".parquet", "read_parquet")],
)
def test_each_format_reads_in_duckdb(tmp_path: Path, suffix: str, reader: str) -> None:
    out = tmp_path / f"traffic{suffix}"
    result = write_synth(SynthConfig(exchanges=3000, seed=1), out)
    assert result.truth_path == tmp_path / "traffic.truth.json"
    rel = f"{reader}('{out}')"
    count, distinct = duckdb.sql(f"select count(*), count(distinct exchange_id) from {rel}").fetchall()[0]
    assert count == distinct == 3000
    cols = [row[0] for row in duckdb.sql(f"describe select * from {rel}").fetchall()]
    assert tuple(cols) == COLUMNS
    # Multi-line prompts, quotes and zero-width characters survive the round trip.
    longest = duckdb.sql(f"select max(length(prompt)) from {rel}").fetchall()[0][0]
    assert longest > 500


def test_iter_exchanges_matches_file(tmp_path: Path) -> None:
    config = SynthConfig(exchanges=1500, seed=3)
    out = tmp_path / "t.jsonl"
    write_synth(config, out)
    with out.open(encoding="utf-8") as fh:
        from_file = [json.loads(line) for line in fh]
    assert list(iter_exchanges(config)) == from_file


def test_progress_and_bad_suffix(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    write_synth(
        SynthConfig(exchanges=1000), tmp_path / "t.parquet", progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (1000, 1000)
    with pytest.raises(ValueError, match="suffix"):
        write_synth(SynthConfig(exchanges=100), tmp_path / "t.xlsx")


def test_synth_stands_apart_on_numpy_alone(tmp_path: Path) -> None:
    # Nothing from the engine, even in a function; at import and for JSONL, no third party but numpy.
    for path in (Path(__file__).resolve().parents[2] / "synth").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            assert not [n for n in names if n.split(".")[0] in ("engine", "index", "tui")], path
    code = (
        "import sys; before = set(sys.modules); import synth; from pathlib import Path; "
        f"synth.write_synth(synth.SynthConfig(exchanges=300), Path({str(tmp_path / 't.jsonl')!r})); "
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # cython_runtime: the module Cython extensions (numpy.random) register, not a package.
    loaded = set(out.stdout.split()) - set(sys.stdlib_module_names) - {"cython_runtime"}
    assert {m for m in loaded if not m.startswith("_")} == {"numpy", "synth"}


def test_truth_covers_every_account(default_run) -> None:
    rows, truth, result = default_run
    sent = {r["account_id"] for r in rows}
    assert set(truth["accounts"]) == sent
    for c in truth["campaigns"]:
        assert all(truth["accounts"][a] == c["campaign_id"] for a in c["accounts"])
    labelled = {a for a, cid in truth["accounts"].items() if cid is not None}
    assert labelled == {a for c in truth["campaigns"] for a in c["accounts"]}
    counts = Counter(r["account_id"] for r in rows)
    for c in truth["campaigns"]:
        assert sum(counts[a] for a in c["accounts"]) == c["exchanges"]
    assert [c.campaign_id for c in result.campaigns] == [c["campaign_id"] for c in truth["campaigns"]]


def test_campaign_kinds_sizes_and_share(default_run) -> None:
    _rows, truth, _result = default_run
    for kind in KINDS:
        camps = [c for c in truth["campaigns"] if c["kind"] == kind]
        assert len(camps) >= 2, kind
        assert all(len(c["accounts"]) >= 2 for c in camps)
        assert all(c["example_prompts"] for c in camps)
    share = sum(c["exchanges"] for c in truth["campaigns"]) / N
    assert 0.12 <= share <= 0.18


def test_campaign_accounts_are_not_volume_outliers(default_run) -> None:
    rows, truth, _result = default_run
    counts = Counter(r["account_id"] for r in rows)
    camp = [counts[a] for a, cid in truth["accounts"].items() if cid is not None]
    organic = sorted(counts[a] for a, cid in truth["accounts"].items() if cid is None)
    assert max(camp) < 100
    # Plenty of ordinary users send more than the busiest campaign account.
    assert sum(n > max(camp) for n in organic) >= 3
    assert organic[len(organic) // 2] <= 5  # most organic accounts send a handful


def test_account_ids_do_not_reveal_campaigns(default_run) -> None:
    _rows, truth, _result = default_run
    ids = list(truth["accounts"])
    assert all(re.fullmatch(r"acct_\d{6}", a) for a in ids)
    nums = sorted(int(a[5:]) for a, cid in truth["accounts"].items() if cid is not None)
    # Campaign accounts are scattered over the whole id range, not a contiguous block.
    assert nums[0] < len(ids) * 0.1 and nums[-1] > len(ids) * 0.9
    gaps = [b - a for a, b in zip(nums, nums[1:], strict=False)]
    assert sum(g == 1 for g in gaps) < len(gaps) / 2


def test_viral_prompts_spread_over_organic_accounts(default_run) -> None:
    rows, truth, _result = default_run
    assert len(truth["viral"]) >= 3
    for v in truth["viral"]:
        head = v["text"][:50].lower()
        senders = {r["account_id"] for r in rows if r["prompt"].lower().startswith(head)}
        assert len(senders) >= 50, v["viral_id"]
        assert all(truth["accounts"][a] is None for a in senders)
        # A few pasters add a greeting or a typo up front, so the truth lists slightly more.
        assert len(senders & set(v["accounts"])) >= 0.9 * len(v["accounts"])
        assert all(truth["accounts"][a] is None for a in v["accounts"])


def test_single_app_is_organic_high_volume_template(default_run) -> None:
    rows, truth, _result = default_run
    counts = Counter(r["account_id"] for r in rows)
    assert truth["single_app"]
    for app in truth["single_app"]:
        acct = app["account"]
        assert truth["accounts"][acct] is None
        assert counts[acct] == app["exchanges"] >= 100
        prompts = [r["prompt"] for r in rows if r["account_id"] == acct]
        fixed = app["template"].split("{")[0]
        assert all(p.startswith(fixed) for p in prompts)
        assert len(set(prompts)) > 0.95 * len(prompts)


def _unperturb(text: str) -> str:
    back = {v: k for k, v in {
        "a": "\u0430", "e": "\u0435", "o": "\u043e", "c": "\u0441", "p": "\u0440", "x": "\u0445",
        "y": "\u0443", "i": "\u0456", "A": "\u0410", "E": "\u0415", "O": "\u041e", "C": "\u0421",
        "P": "\u0420", "T": "\u0422", "H": "\u041d", "K": "\u041a", "M": "\u041c", "B": "\u0412",
    }.items()}  # fmt: skip
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFC", text))
    text = "".join(back.get(ch, ch) for ch in text).lower()
    for g in V.GREETINGS + V.SIGNOFFS:
        text = text.replace(g.lower(), "")
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def test_copy_ring_prompts_are_shared_and_perturbed(default_run) -> None:
    rows, truth, _result = default_run
    for cid, camp_rows in _kind_rows(rows, truth, "copy_ring").items():
        texts = [r["prompt"] for r in camp_rows]
        assert any(_CYRILLIC.search(t) for t in texts), cid
        assert any(_ZERO_WIDTH.search(t) for t in texts), cid
        senders: dict[str, set[str]] = defaultdict(set)
        for r in camp_rows:
            senders[_unperturb(r["prompt"])].add(r["account_id"])
        shared = [k for k, accts in senders.items() if len(accts) >= 2]
        assert len(shared) >= 10, cid
        # Sends of one item mostly differ byte-wise: the ring does not send identical copies.
        raw: dict[str, list[str]] = defaultdict(list)
        for r in camp_rows:
            raw[_unperturb(r["prompt"])].append(r["prompt"])
        multi = [v for v in raw.values() if len(v) >= 2]
        assert sum(len(set(v)) == len(v) for v in multi) >= 0.6 * len(multi), cid


def test_template_sweep_accounts_never_repeat(default_run) -> None:
    rows, truth, _result = default_run
    camps = {c["campaign_id"]: c for c in truth["campaigns"]}
    long_variable = False
    for cid, camp_rows in _kind_rows(rows, truth, "template_sweep").items():
        # The fixed part may follow a variable passage, so look for its intro sentence anywhere.
        intro = next(i for i in V.SWEEP_INTROS if i in camps[cid]["example_prompts"][0])
        sweep = [r for r in camp_rows if intro in r["prompt"]]
        assert len(sweep) >= 0.8 * len(camp_rows)
        per_account = Counter((r["account_id"], r["prompt"]) for r in sweep)
        assert max(per_account.values()) == 1, cid
        assert len({r["prompt"] for r in sweep}) == len(sweep)
        long_variable |= any(len(r["prompt"].split()) > 150 for r in sweep)
    assert long_variable, "at least one sweep has a 100+ word variable passage"


def test_cot_prompts_demand_reasoning_in_many_phrasings(default_run) -> None:
    rows, truth, _result = default_run
    phrasings = [p.lower() for p in V.COT_BEFORE + V.COT_AFTER]
    assert len(phrasings) >= 15
    used: set[str] = set()
    for cid, camp_rows in _kind_rows(rows, truth, "cot_elicitation").items():
        hits = 0
        for r in camp_rows:
            low = r["prompt"].lower()
            match = [p for p in phrasings if p.rstrip(".") in low]
            hits += bool(match)
            used.update(match)
        assert hits >= 0.8 * len(camp_rows), cid
    assert len(used) >= 8


def test_low_slow_accounts_share_a_preamble_and_stay_small(default_run) -> None:
    rows, truth, _result = default_run
    for cid, camp_rows in _kind_rows(rows, truth, "low_slow").items():
        accounts = {r["account_id"] for r in camp_rows}
        assert len(accounts) >= 20, cid
        preamble = Counter(r["prompt"].split("\n\n")[0] for r in camp_rows).most_common(1)[0][0]
        assert preamble.startswith("You are")
        with_preamble = Counter(r["account_id"] for r in camp_rows if r["prompt"].startswith(preamble))
        assert max(with_preamble.values()) <= 30
        assert len(with_preamble) == len(accounts)
        days = {r["timestamp"][:10] for r in camp_rows}
        assert len(days) >= 15  # spread over most of the period


def test_organic_prompts_are_diverse_with_recurring_generic_ones(default_run) -> None:
    rows, truth, _result = default_run
    organic = [r for r in rows if truth["accounts"][r["account_id"]] is None]
    prompts = [r["prompt"] for r in organic]
    assert len(set(prompts)) > 0.6 * len(prompts)
    lengths = [len(p.split()) for p in prompts]
    assert min(lengths) <= 2 and max(lengths) >= 300
    generic = {p.lower() for p in V.GENERIC_PROMPTS}
    senders = defaultdict(set)
    for r in organic:
        if r["prompt"].lower() in generic:
            senders[r["prompt"].lower()].add(r["account_id"])
    assert max(len(s) for s in senders.values()) >= 10
