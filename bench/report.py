"""Write ``docs/benchmarks.md`` from the results files ``bench/results/*.json``.

Run as ``python -m bench.report`` (``--check`` exits 1 when the file on disk is stale instead of
writing it). One table per kind of result (scale runs by size and stage, detection recall per campaign
kind, join recall per setting, encoder tiers, thresholds, the pipeline, template mining, TUI pivots);
every row names its results file, the machine and the git sha the JSON records. The output depends only
on the JSON files (no clock, no environment), so ``tests/test_docs.py`` can regenerate it and compare.
Run notes and caveats, which no JSON carries, are in ``bench/results/NOTES.md``. The module stays whole
past ~500 lines: each section is a short renderer over the same few helpers, and the page is one file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"

Result = tuple[str, dict[str, Any]]  # (file name, parsed JSON)

KINDS = ("copy_ring", "template_sweep", "cot_elicitation", "low_slow")
KIND_HEADERS = ["copy ring", "template sweep", "CoT elicitation", "low and slow"]
# Thresholds shown from each threshold sweep: the defaults of the three encoders and round values.
# Step counts shown from each copy-network sweep.
STEP_ROWS = (1, 2, 4, 6, 8, 10, 12, 15)
THRESHOLD_ROWS = (0.60, 0.65, 0.70, 0.72, 0.75, 0.76, 0.80, 0.83, 0.84, 0.85, 0.90, 0.95)


# ------------------------------------------------------------------------------------ loading
def load_results(folder: Path = RESULTS) -> list[Result]:
    """Every ``*.json`` in ``folder``, sorted by file name."""
    return [(path.name, json.loads(path.read_text())) for path in sorted(folder.glob("*.json"))]


def bench_of(name: str, data: dict[str, Any]) -> str:
    """The bench script that wrote a result (older files lack the ``bench`` key: the name says it)."""
    if data.get("bench"):
        return str(data["bench"])
    return "template_eval" if name.startswith("template_eval") else name.removesuffix(".json")


# ---------------------------------------------------------------------------------- formatting
def _num(value: Any, digits: int = 0) -> str:
    """A number with thousands separators and ``digits`` decimals; '—' for a missing value."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and digits == 0:
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def _secs(value: Any) -> str:
    """Seconds: whole seconds from 100 s up, one decimal below."""
    if value is None:
        return "—"
    return _num(value, 0 if value >= 100 else 1)


def _ms(value: Any) -> str:
    """Milliseconds: three decimals below 1 ms, one below 100 ms, whole above."""
    if value is None:
        return "—"
    return _num(value, 3 if value < 1 else 1 if value < 100 else 0)


def _gb(mb: Any) -> str:
    return "—" if mb is None else f"{mb / 1000:.1f}"


def _ratio(value: Any) -> str:
    return _num(value, 3)


def _sha(data: dict[str, Any]) -> str:
    sha = data.get("git_sha")
    if not sha:
        return "—"
    short = sha.split("-")[0][:7]
    return f"{short} (dirty)" if sha.endswith("-dirty") else short


def _machine(data: dict[str, Any]) -> str:
    m = data.get("machine") or {}
    cores = m.get("cores", m.get("cpus"))
    parts = [m["cpu"]] if m.get("cpu") else []
    if cores:
        parts.append(f"{cores} cores")
    if m.get("ram_gb"):
        parts.append(f"{m['ram_gb']:.0f} GB")
    if m.get("gpu"):
        parts.append(str(m["gpu"]))
    return ", ".join(parts) or "—"


def _band(bands: list[dict[str, Any]] | None) -> str:
    """Recall by cosine band, as 'from-to: recall' pairs in one cell."""
    if not bands:
        return "—"
    return "; ".join(f"{b['from']:.2f}-{b['to']:.2f}: {b['recall']:.3f}" for b in bands)


def _table(headers: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return lines + [""]


def _provenance(name: str, data: dict[str, Any]) -> list[str]:
    return [f"`{name}`", _machine(data), _sha(data)]


PROVENANCE = ["results file", "machine", "git sha"]


# ------------------------------------------------------------------------------------- sections
def _files(results: list[Result]) -> list[str]:
    rows = [[f"`{name}`", bench_of(name, data), (data.get("created") or "—")[:10], _machine(data), _sha(data)]
            for name, data in results]
    return ["## Results files", ""] + _table(["results file", "bench", "created", "machine", "git sha"], rows)


def _scale_runs(results: list[Result]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file, file's JSON, run) for every run of every scale result, by size then file name."""
    runs = [(name, data, run) for name, data in results if bench_of(name, data) == "scale"
            for run in data.get("runs", [])]
    return sorted(runs, key=lambda item: (item[2]["exchanges"], item[0]))


def _timed(run: dict[str, Any]) -> str:
    stages = run.get("stages", {})
    if run.get("resumed_scan"):
        return "scan, resumed"
    if run.get("rescanned"):
        return "scan again"
    return ", ".join(stages) if stages else "—"


def _scale(results: list[Result]) -> list[str]:
    runs = _scale_runs(results)
    if not runs:
        return []
    out = ["## Scale: ingest, embed and scan from an empty workspace (`bench/scale.py`)", "",
           "Synthetic traffic from `copyhound synth`, static tier unless the encoder column says otherwise. "
           "*Timed* names the stages the run timed: a resumed or repeated scan times the scan alone, and its "
           "end-to-end figure is that scan.", ""]
    rows = []
    for name, data, run in runs:
        st = run.get("stages", {})
        who = run.get("who_else", {}).get("ms", {})
        rows.append([_num(run["exchanges"]), _num(run.get("prompts")), _num(run.get("accounts")), run.get("encoder", "—"),
                     _timed(run), _secs(st.get("ingest", {}).get("seconds")), _secs(st.get("embed", {}).get("seconds")),
                     _secs(st.get("scan", {}).get("seconds")), _secs(run.get("end_to_end_s")),
                     _gb(run.get("peak_rss_mb")), f"{_num(who.get('p50'), 1)} / {_num(who.get('p99'), 0)}",
                     *_provenance(name, data)])
    out += ["### By size", ""] + _table(
        ["exchanges", "prompts", "accounts", "encoder", "timed", "ingest s", "embed + index s", "scan s",
         "end to end s", "peak RSS GB", "who-else p50 / p99 ms", *PROVENANCE], rows)

    stage_names = ["load_vectors", "self_join", "families", "templates", "scoring"]
    rows = []
    for name, data, run in runs:
        scan = run.get("stages", {}).get("scan", {})
        secs = scan.get("stage_seconds", {})
        rows.append([_num(run["exchanges"]), *[_secs(secs.get(s)) for s in stage_names],
                     _num(scan.get("edges")), _num(scan.get("families")), _num(scan.get("templates")),
                     _num(scan.get("rings")), _num(scan.get("flagged")), *_provenance(name, data)])
    out += ["### Scan stages (seconds) and what the scan found", ""] + _table(
        ["exchanges", "load vectors", "self-join", "families", "templates", "scoring", "edges", "families found",
         "templates found", "rings", "flagged accounts", *PROVENANCE], rows)

    mem_names = ["embed", "self-join", "families", "templates", "scoring", "sender index"]
    rows = []
    for name, data, run in runs:
        peaks = run.get("stages", {}).get("scan", {}).get("stage_peak_rss_mb")
        if peaks:
            rows.append([_num(run["exchanges"]), *[_gb(peaks.get(s)) for s in mem_names], *_provenance(name, data)])
    out += ["### Peak memory per scan stage (GB, process RSS)", ""] + _table(
        ["exchanges", *mem_names, *PROVENANCE], rows)

    rows = []
    for name, data, run in runs:
        q = run.get("quality", {})
        kinds = q.get("kinds", {})
        rows.append([_num(run["exchanges"]),
                     *[_recall_auc(kinds.get(k)) for k in KINDS],
                     _num(q.get("viral_rings")), _num(q.get("organic_rings")), _num(q.get("organic_fpr"), 4),
                     *_provenance(name, data)])
    out += ["### Detection at scale: recall of campaign accounts at 1% organic false-positive rate (AUC)", ""]
    out += _table(["exchanges", *KIND_HEADERS, "viral rings", "organic rings", "organic FPR", *PROVENANCE], rows)

    rows = []
    for name, data, run in runs:
        ex = run.get("side_by_side", {}).get("exact_sample")
        if ex:
            rows.append([_num(run["exchanges"]), _num(ex.get("rows")), _ratio(ex.get("pair_recall_top20")),
                         _ratio(ex.get("partition_recall_top20")), _ratio(ex.get("capped_top20")),
                         _band(ex.get("pair_recall_top20_by_similarity")), _secs(ex.get("extrapolated_all_rows_s")),
                         *_provenance(name, data)])
    out += ["### Self-join against exact brute force on sampled rows", "",
            "Top-20 recall: the share of each sampled row's 20 nearest exact neighbours above the scan's cut "
            "that the scan's edges hold; *partition*: the share the IVF plan compares at all; *capped*: the "
            "share compared but dropped by the per-prompt edge cap.", ""]
    out += _table(["exchanges", "rows", "top-20 recall", "partition", "capped", "edges' recall by cosine band",
                   "brute force, all rows (s, extrapolated)", *PROVENANCE], rows)

    rows = []
    for name, data, run in runs:
        side = run.get("side_by_side", {})
        sem, own = side.get("semhash"), side.get("copyhound")
        if sem and own:
            rows.append([_num(run["exchanges"]), _num(side.get("prompts")),
                         "same vectors" if sem.get("same_vectors") else "encodes its own",
                         _secs(sem.get("seconds")),
                         _secs(own.get("seconds")), _num(sem.get("ratio_semhash_over_copyhound"), 2),
                         _ratio(own.get("agreement_jaccard")), *_provenance(name, data)])
    if rows:
        out += ["### Against SemHash on the same self-deduplication job", "",
                "*Vectors*: SemHash given the vectors the scan joined (`SemHash.from_embeddings`; neither "
                "time includes encoding), or encoding the prompts itself (older runs; its time includes "
                "that encoding). copyhound's time is load vectors + self-join + families. Agreement: Jaccard "
                "of the prompts each calls a near-copy.", ""]
        out += _table(["exchanges", "prompts", "vectors", "SemHash s", "copyhound s", "ratio", "agreement",
                       *PROVENANCE], rows)

    rows = [[key, _num(value, 2), *_provenance(name, data)] for name, data in results
            if bench_of(name, data) == "scale" for key, value in sorted(data.get("exponents", {}).items())]
    if rows:
        out += ["### Fitted exponents (seconds ∝ N^b over the sizes of one run)", ""]
        out += _table(["figure", "b", *PROVENANCE], rows)
    return out


def _recall_auc(kind: dict[str, Any] | None) -> str:
    if not kind:
        return "—"
    return f"{kind['recall_at_1pct_fpr']:.2f} ({kind['auc']:.3f})"


def _detection(results: list[Result]) -> list[str]:
    rows = []
    for name, data in results:
        if bench_of(name, data) != "detect_eval":
            continue
        encoder = data.get("encoder", "minilm") + (" + recheck" if data.get("recheck") else "")
        for scenario in data.get("scenarios", []):
            for method, result in scenario.get("methods", {}).items():
                neg = result.get("negatives", {})
                rows.append([scenario["scenario"], encoder, method, *[_recall_auc(result["kinds"].get(k)) for k in KINDS],
                             _num(len(neg.get("viral_rings", []))), _num(len(neg.get("organic_rings", []))),
                             _secs(result.get("runtime_s")), *_provenance(name, data)])
    if not rows:
        return []
    return ["## Detection per campaign kind (`bench/detect_eval.py`)", "",
            "Recall of campaign accounts at 1% organic false-positive rate, ROC AUC in brackets, on three "
            "labelled workspaces (synth, demo, corpora), against two baselines in the same run: linking by "
            "exact normalised copies (*exact*) and MinHash-LSH near-duplicates (*minhash*). Viral rings: rings "
            "made mostly of the senders of one viral prompt. Seconds: copyhound's first scan, or the "
            "baseline's run.", ""] + _table(
        ["scenario", "encoder", "method", *KIND_HEADERS, "viral rings", "organic rings", "seconds", *PROVENANCE], rows)


def _rec2(v: dict[str, Any] | None) -> str:
    """Recall at 1% / 0.1% organic FPR."""
    if not v:
        return "-"
    return f"{_ratio(v.get('recall_at_1pct_fpr'))} / {_ratio(v.get('recall_at_01pct_fpr'))}"


def _detection_at_scale(results: list[Result]) -> list[str]:
    rows = []
    for name, data in results:
        if bench_of(name, data) != "detect_scale":
            continue
        for config, run in data.get("runs", {}).items():
            q = run.get("quality", {})
            shapes = q.get("shapes") or {}
            neg = q.get("negatives", {})
            apps = neg.get("single_app", [])
            ringed = [q["kinds"][k].get("campaigns_ringed") for k in KINDS if k in q.get("kinds", {})]
            rows.append([data.get("profile", "default"), _num(data.get("exchanges")), config,
                         *[_rec2(q.get("kinds", {}).get(k)) for k in KINDS],
                         _ratio(shapes.get("diluted", {}).get("recall_at_1pct_fpr")) if shapes else "-",
                         _ratio(shapes.get("thin", {}).get("recall_at_1pct_fpr")) if shapes else "-",
                         " / ".join(_ratio(x) for x in ringed) if ringed else "-",
                         _num(len(neg.get("organic_rings", []))),
                         (f"{sum(1 for a in apps if a.get('score', 0) >= 0.5)} of {len(apps)} "
                          f"(max {max((a.get('score', 0) for a in apps), default=0):.2f})"),
                         _num((neg.get("bank_bystanders") or {}).get("in_ring")) if neg.get("bank_bystanders") else "-",
                         _secs(run.get("seconds")), *_provenance(name, data)])
    if not rows:
        return []
    return ["## Detection at scale, and what each mechanism buys (`bench/detect_scale.py`)", "",
            "The scoring stage run again on one scanned workspace per row group, with every detection "
            "mechanism on (*all*), each one off alone, and all off (*none*: detection as it was before them); "
            "what a scan runs is in `engine.config.DetectSettings` (since these runs: *all* without sharer "
            "weights, the *without sharer_weights* row). Kinds: recall of campaign accounts at 1% / 0.1% organic false-positive rate. "
            "Diluted and thin: recall at 1% of the season profile's accounts whose campaign traffic is under "
            "half of what they send, and of those with 2-5 exchanges. Ringed: share of each kind's campaigns "
            "with >= 80% of their accounts in one ring of purity >= 0.9 (kinds in the order of the columns). "
            "Apps: single-account integrations flagged (score >= 0.5), and the highest integration score. Bystanders: organic users who sent a few "
            "public-bank prompts, in a ring.", ""] + _table(
        ["profile", "exchanges", "mechanisms", *KIND_HEADERS, "diluted", "thin", "ringed", "organic rings",
         "apps", "bystanders in rings", "scoring s", *PROVENANCE], rows)


def _copy_network_steps(results: list[Result]) -> list[str]:
    rows = []
    for name, data in results:
        if bench_of(name, data) != "copy_network_steps":
            continue
        for steps, res in data.get("steps", {}).items():
            if int(steps) in STEP_ROWS:
                shapes = res.get("shapes") or {}
                rows.append([data.get("profile", "default"), _num(data.get("exchanges")), str(steps),
                             *[_rec2(res.get("kinds", {}).get(k)) for k in KINDS],
                             _ratio(shapes.get("diluted", {}).get("recall_at_1pct_fpr")) if shapes else "-",
                             _ratio(shapes.get("thin", {}).get("recall_at_1pct_fpr")) if shapes else "-",
                             *_provenance(name, data)])
    if not rows:
        return []
    return ["## Copy-network standing by steps (`bench/copy_network_steps.py`)", "",
            "The standing alone, before it joins the other signals: recall of campaign accounts at the standing's "
            "own 1% / 0.1% organic false-positive rate after each number of steps (the scan takes 8).", ""] + _table(
        ["profile", "exchanges", "steps", *KIND_HEADERS, "diluted", "thin", *PROVENANCE], rows)


def _join(results: list[Result]) -> list[str]:
    rows = []
    for name, data in results:
        if bench_of(name, data) != "join_recall":
            continue
        for run in data.get("runs", []):
            rows.append([_num(data.get("prompts")), _num(data.get("nlist")), _num(run.get("nprobe")),
                         _num(run.get("spill"), 2), _num(run.get("max_list")), _num(run.get("point_probes", 0)),
                         _secs(run.get("plan_s")), _secs(run.get("join_s")), _num(run.get("time_ratio_to_first"), 2),
                         _num(run.get("edges")), _ratio(run.get("pair_recall_top20")),
                         _ratio(run.get("partition_recall_top20")), _ratio(run.get("capped_top20")),
                         *_provenance(name, data)])
    if not rows:
        return []
    return ["## Self-join settings (`bench/join_recall.py`)", "",
            "The scan's IVF join on an existing workspace, once per setting, against exact brute force on "
            "sampled rows (top-20 recall as above; a partition-only run plans without joining).", ""] + _table(
        ["prompts", "lists", "nprobe", "spill", "max list", "point probes", "plan s", "join s", "time vs first",
         "edges", "top-20 recall", "partition", "capped", *PROVENANCE], rows)


def _thresholds(results: list[Result]) -> list[str]:
    out: list[str] = []
    summary = []
    for name, data in results:
        if bench_of(name, data) != "threshold":
            continue
        sizes = data.get("sizes", {})
        summary.append([data.get("encoder", "—"), _num(sizes.get("perturbed")), _num(sizes.get("nearest_pairs")),
                        _num(sizes.get("msrp_positive")), _num(sizes.get("msrp_negative")),
                        _num(data.get("recommended_threshold"), 2), *_provenance(name, data)])
    if not summary:
        return []
    out += ["## Thresholds (`bench/threshold.py`)", "",
            "Evasively perturbed copies of real prompts (typos, greetings, sign-offs, punctuation, homoglyphs, "
            "zero-width characters, case), the most similar pairs of distinct real prompts, random pairs and "
            "MSRP paraphrase pairs; the share of each at or above a cosine threshold.", ""]
    out += _table(["encoder", "perturbed copies", "nearest distinct pairs", "MSRP paraphrases",
                   "MSRP non-paraphrases", "recommended by the run's rule", *PROVENANCE], summary)
    for name, data in results:
        if bench_of(name, data) != "threshold":
            continue
        rows = [[_num(r["threshold"], 2), _ratio(r.get("perturbed_recall")), _ratio(r.get("perturbed_non_identical_recall")),
                 _ratio(r.get("nearest_unrelated_fmr")), _ratio(r.get("random_unrelated_fmr")),
                 _ratio(r.get("msrp_positive_rate")), _ratio(r.get("msrp_negative_rate")),
                 _ratio(r.get("jailbreak_family_rate"))]
                for r in data.get("sweep", []) if any(abs(r["threshold"] - t) < 1e-9 for t in THRESHOLD_ROWS)]
        out += [f"### `{name}`: {data.get('encoder', '—')}", ""]
        out += _table(["threshold", "perturbed kept", "non-identical kept", "nearest distinct matched",
                       "random matched", "MSRP paraphrases matched", "MSRP non-paraphrases matched",
                       "jailbreak family pairs matched"], rows)
    return out


def _encoders(results: list[Result]) -> list[str]:
    out: list[str] = []
    speed, cosine, gpu = [], [], []
    for name, data in results:
        bench = bench_of(name, data)
        if bench == "onnx_tier":
            for setting, figures in data.get("speed", {}).items():
                speed.append([setting, _num(data.get("prompts")), _num(figures.get("prompts_per_second"), 1),
                              _num(figures.get("ratio_to_minilm_as_configured"), 2), *_provenance(name, data)])
            for pair, figures in data.get("cosine", {}).items():
                cosine.append([pair, _num(figures.get("mean"), 4), _num(figures.get("p1"), 4),
                               _num(figures.get("min"), 4), *_provenance(name, data)])
        elif bench == "gpu_embed":
            f = data.get("figures", {})
            base = f.get("fp32_baseline", {})
            join = f.get("selfjoin", {})
            gpu.append([str(data.get("dtype")), _num(data.get("batch")), _num(data.get("distinct_prompts")),
                        _num(f.get("prompts_per_second"), 0), _num(base.get("prompts_per_second"), 0),
                        _num(base.get("cosine_to_fp32", {}).get("min"), 5),
                        _secs(join.get("exact", {}).get("seconds")), _secs(join.get("ivf", {}).get("seconds")),
                        _ratio(join.get("ivf", {}).get("recall_vs_exact")), *_provenance(name, data)])
    if speed:
        out += ["## Encoder tiers: int8 ONNX against MiniLM on CPU (`bench/onnx_tier.py`)", "",
                "Real prompts (ShareGPT, Arena, Alpaca), one process, the machine's threads.", ""]
        out += _table(["encoder (setting)", "prompts", "prompts/s", "ratio to MiniLM as configured", *PROVENANCE], speed)
        out += ["### Cosine between the tiers' vectors of the same prompts", ""]
        out += _table(["pair", "mean", "1st percentile", "min", *PROVENANCE], cosine)
    if gpu:
        out += ["## MiniLM on a GPU (`bench/gpu_embed.py`)", "",
                "Distinct synthetic prompts; the self-join of all of them at cosine 0.84, exact and IVF.", ""]
        out += _table(["dtype", "batch", "prompts", "prompts/s", "fp32 prompts/s", "min cosine to fp32",
                       "exact self-join s", "IVF self-join s", "IVF pair recall", *PROVENANCE], gpu)
    return out


def _pipeline(results: list[Result]) -> list[str]:
    rows = []
    for name, data in results:
        if bench_of(name, data) != "pipeline":
            continue
        for size in data.get("sizes", []):
            rate = {s["name"]: s.get("per_second") for s in size.get("stages", [])}
            f = size.get("figures", {})
            who = f.get("who_else_ms", {})
            recall = f.get("who_else_account_recall_vs_brute", {}).get("recall")
            ivb = f.get("index_vs_brute")
            if ivb is None and f.get("range_search_vs_brute"):
                key = sorted(f["range_search_vs_brute"])[0]
                ivb = f["range_search_vs_brute"][key]
            index_ms = ivb.get("index_ms", {}).get("p50") if ivb else None
            brute_ms = ivb.get("brute_ms", {}).get("p50") if ivb else None
            rows.append([_num(size["N"]), _num(size.get("distinct_prompts")), str(size.get("vectors", "—")),
                         _num(rate.get("ingest"), 0), _num(rate.get("fingerprint"), 0), _num(rate.get("embed"), 1),
                         _num(rate.get("index_add"), 0),
                         f"{_num(who.get('p50'), 1)} / {_num(who.get('p99'), 1)}" if who else "—",
                         _ratio(recall), f"{_ms(index_ms)} / {_ms(brute_ms)}" if ivb else "—",
                         _ratio(ivb.get("recall_vs_brute", {}).get("recall")) if ivb else "—",
                         *_provenance(name, data)])
    if not rows:
        return []
    return ["## Pipeline stages with MiniLM (`bench/pipeline.py`)", "",
            "N is exchanges. who-else: one query a call, normalising, encoding, range search and grouping "
            "into accounts included. Index / brute p50: the FAISS index against numpy brute force on the same "
            "queries (at the largest size without embedding: random unit vectors with planted near-copies, "
            "the index at its lowest nprobe).", ""] + _table(
        ["N", "distinct prompts", "vectors", "ingest rows/s", "fingerprint prompts/s", "embed prompts/s",
         "index add vectors/s", "who-else p50 / p99 ms", "who-else account recall", "index / brute p50 ms",
         "index recall", *PROVENANCE], rows)


def _templates(results: list[Result]) -> list[str]:
    rows = []
    for name, data in results:
        if bench_of(name, data) != "template_eval":
            continue
        rows.append([_num(data.get("n_t0")), _num(data.get("n_organic")), _num(data.get("n_true_templates")),
                     _num(data.get("n_mined_templates")), _ratio(data.get("purity")), _ratio(data.get("recall")),
                     _num(data.get("recovered")), _ratio(data.get("organic_false_assignment")),
                     _secs(data.get("runtime_s")), *_provenance(name, data)])
    if not rows:
        return []
    return ["## Template mining on the T0 corpus (`bench/template_eval.py`)", "",
            "T0 prompts of known templates plus organic prompts; purity and recall of the mined templates, "
            "templates recovered, and the share of organic prompts wrongly assigned to a template.", ""] + _table(
        ["T0 prompts", "organic prompts", "true templates", "mined", "purity", "recall", "recovered",
         "organic wrongly assigned", "seconds", *PROVENANCE], rows)


def _tui(results: list[Result]) -> list[str]:
    rows = []
    for name, data in results:
        if bench_of(name, data) != "tui_pivot":
            continue
        for pivot in data.get("pivots", []):
            rows.append([_num(data.get("exchanges")), str(data.get("vectors", "—")), pivot["pivot"],
                         _num(pivot.get("load_ms_median"), 0), _num(pivot.get("render_ms_median"), 0),
                         _num(pivot.get("render_ms_max"), 0), *_provenance(name, data)])
    if not rows:
        return []
    return ["## TUI pivots (`bench/tui_pivot.py`)", "",
            "Milliseconds from a pivot's data arriving to the screen rendered (median of 5, and the worst), and "
            "the median time to load the data in a worker.", ""] + _table(
        ["exchanges", "vectors", "pivot", "load ms", "render ms", "render ms, worst", *PROVENANCE], rows)


def _ingest_speed(results: list[Result]) -> list[str]:
    rows = []
    for name, data in results:
        if bench_of(name, data) != "ingest_speed":
            continue
        same = data.get("identical_except_prompt_ids")
        rows.append([_num(data.get("rows")), _num((data.get("file_bytes") or 0) / 1e6), str(data.get("on_error", "—")),
                     _num(data.get("rounds")),
                     _num(data.get("baseline_rows_per_s")), _num(data.get("this_rows_per_s")),
                     f"{data['speedup']:.2f}x" if data.get("speedup") else "—",
                     "yes" if same else "no" if same is not None else "—",
                     _num(data.get("machine", {}).get("loadavg_1_5_15", [None])[0], 1), *_provenance(name, data)])
    if not rows:
        return []
    return ["## Ingest speed against a baseline commit (`bench/ingest_speed.py`)", "",
            "One JSONL file ingested into a fresh workspace by a baseline commit (`baseline_sha` in the file) and by "
            "this code, alternating, "
            "each in its own process; rows/s is the median over the rounds of rows read over `Engine.ingest`'s "
            "seconds. Same tables: `prompts`, `exchanges`, `accounts`, the file's counters and the quarantine "
            "equal row for row, prompt ids apart (matched through fingerprints; see `docs/scale.md`). Load: the "
            "1-minute load average when the results were written (the machine column gives its cores).", ""] + _table(
        ["rows", "MB", "on error", "rounds", "baseline rows/s", "rows/s", "speed-up", "same tables",
         "load", *PROVENANCE], rows)


def _incremental(results: list[Result]) -> list[str]:
    rows = []
    for name, data in results:
        if bench_of(name, data) != "incremental_scan":
            continue
        scans = {s["scan"].split(" ")[0]: s for s in data["scans"]}
        c = data["compare"]
        d = c.get("differences", {})
        elsewhere = sum(v.get("elsewhere", 0) for v in d.values()) if d else None
        rows.append([_num(data.get("exchanges_before", 0) + data.get("exchanges_day", 0)), _num(data.get("exchanges_day")),
                     _num(scans["incremental"]["joined"]),
                     _secs(scans["incremental"]["seconds"]), _secs(scans["full"]["seconds"]),
                     f"{data['full_over_incremental']:.2f}x" if data.get("full_over_incremental") else "—",
                     _secs(scans["incremental"]["stage_seconds"].get("self_join")),
                     _secs(scans["full"]["stage_seconds"].get("self_join")),
                     f"{c['edge_jaccard']:.3f}", _num(elsewhere),
                     f"{c['flagged_only_incremental']} / {c['flagged_only_full']}",
                     f"{c['rings_identical']} of {c['rings_full']}", *_provenance(name, data)])
    if not rows:
        return []
    return ["## Incremental scans against a full rescan (`bench/incremental_scan.py`)", "",
            "A workspace scanned before a day of traffic, given the day, then scanned as a nightly job would (only "
            "the new prompts joined against all) and, on a copy, with `scan --full`. *Edges elsewhere*: edges "
            "found by one scan only that touch no prompt the cap of 200 near-copies binds on; the rest of the "
            "difference lies in such dense clusters, where the cap picks which near-copies a prompt keeps. "
            "*Flags differing*: accounts flagged by the incremental scan only / by the full rescan only.", ""] + _table(
        ["exchanges", "new", "prompts joined", "incremental s", "full s", "speed-up", "join s", "full join s",
         "edge Jaccard", "edges elsewhere", "flags differing", "identical rings", *PROVENANCE], rows)


SECTIONS: tuple[Callable[[list[Result]], list[str]], ...] = (
    _scale, _incremental, _ingest_speed, _detection, _detection_at_scale, _copy_network_steps, _join, _thresholds, _encoders, _pipeline, _templates, _tui, _files)


def render(results: list[Result]) -> str:
    """The whole of docs/benchmarks.md for these results."""
    lines = ["# Benchmarks", "",
             "<!-- Generated by `python -m bench.report` from bench/results/*.json; do not edit by hand. -->", "",
             "Every figure below is read from a results file under `bench/results/`, named in its row with the "
             "machine and the git sha the file records. How each run was made, what ran beside it and what "
             "to keep in mind when comparing two rows is in `bench/results/NOTES.md`; the design the figures "
             "measure is in `docs/detection.md` and `docs/scale.md`.", ""]
    for section in SECTIONS:
        lines += section(results)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/benchmarks.md is not current")
    args = parser.parse_args(argv)
    text = render(load_results())
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            sys.stderr.write(f"{OUT} is stale: run python -m bench.report\n")
            return 1
        return 0
    OUT.write_text(text)
    sys.stderr.write(f"wrote {OUT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
