"""Reasoning-elicitation detector: prompts that ask the model to write out its chain of thought.

Distillation of reasoning needs the model's intermediate steps, so such campaigns wrap distinct
questions in an instruction to "show every step". A keyword list alone misses paraphrases and
catches "step" in a recipe, so a prompt is scored by embedding similarity to a curated set of
exemplar instructions (below, varied phrasings and several languages), using three views of it:

* the whole prompt's vector (the instruction dominates short prompts),
* its first sentence and its last sentence (the instruction usually opens or closes the prompt; in
  a long prompt the whole-prompt vector is dominated by the question).

Only sentences of prompts that pass a broad multilingual cue prior (words like step/reason/think,
paso, étape, Schritt, 步骤 ...) are encoded, which keeps the encoder's work to a small share of the
prompts; the whole-prompt view is scored for every prompt.

**Threshold from the data**: the max-similarity of prompts *without* any cue word is the null (how
close unrelated text gets to the exemplars with this encoder); a prompt counts as elicitation when
its best view exceeds that null's 99.9th percentile and the ``min_similarity`` floor (0.5: below it
the null is uninformative, as with a degenerate encoder).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

__all__ = ["EXEMPLARS", "ElicitationScores", "score_elicitation", "split_sentences"]

EXEMPLARS: tuple[str, ...] = (
    "Show every step of your reasoning before the answer.",
    "Think step by step and explain your thought process in detail.",
    "Walk me through your reasoning.",
    "Let's think step by step.",
    "Explain your reasoning step by step, then give the final answer.",
    "Show all your work.",
    "Write out your complete chain of thought before answering.",
    "Reason through the problem out loud, showing all intermediate work.",
    "I want to see your full reasoning, don't skip any steps.",
    "Narrate each step of your thinking.",
    "Break the problem into small steps and justify each one before concluding.",
    "Explain your reasoning exhaustively, listing every assumption and deduction.",
    "Put your reasoning inside <thinking> tags and then give the answer.",
    "Give a detailed step-by-step derivation before the final answer.",
    "Don't just give the answer: explain how you got there.",
    "Write your thinking in numbered steps.",
    "Include your full chain of reasoning, including dead ends.",
    "Before you answer, reason carefully about the problem and show each intermediate step.",
    "Explain your thought process in detail, then state the final answer on its own line.",
    "First think about the problem, write down your reasoning, then answer.",
    "Solve this and show the full solution with all calculations.",
    "Please provide a detailed explanation of every step you take to reach the answer.",
    "Think out loud as you work through this.",
    "Use chain-of-thought reasoning.",
    "Show your reasoning process in full before the conclusion.",
    "End with 'Final answer:' after showing every step of your reasoning.",
    "Explain the logic behind each step of your solution.",
    "Lay out your entire thought process, not just the answer.",
    # British and exam phrasing: "working" rather than "work" or "reasoning".
    "Show your working in full, then give the result.",
    "Write down every intermediate result before the final answer.",
    "Explain how you arrive at the answer, stage by stage.",
    "Piensa paso a paso y explica tu razonamiento en detalle.",
    "Muestra todos los pasos de tu razonamiento antes de la respuesta.",
    "Réfléchis étape par étape et explique ton raisonnement.",
    "Montre chaque étape de ton raisonnement avant de répondre.",
    "Denke Schritt für Schritt und erkläre deinen Gedankengang.",
    "Zeige jeden Schritt deiner Überlegung vor der Antwort.",
    "Pensa passo dopo passo e spiega il tuo ragionamento.",
    "Pense passo a passo e mostre todo o seu raciocínio.",
    "请一步一步地思考，并详细解释你的推理过程。",
    "ステップバイステップで考えて、推論過程を詳しく説明してください。",
    "Думай шаг за шагом и подробно объясни ход своих рассуждений.",
)

# Broad cue prior: a prompt needs one of these to have its sentences encoded; prompts with none
# form the null. Deliberately wide (recall), the embedding decides.
CUE_PATTERN = (
    r"(step|reason|think|thought|work|explain|show|chain|deriv|deduc|justif|walk me|"
    r"out loud|intermediate|stage|arriv|narrat|mind|method|logic|rational|process|how you|"
    r"paso|razon|étape|raison|schritt|gedank|überleg|passo|ragion|raciocín|"
    r"步|思考|推理|ステップ|推論|шаг|рассужд)"
)
_SENT_RE = re.compile(r"[^.!?。！？\n]+[.!?。！？]*")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (split on . ! ? and CJK stops and newlines), stripped, non-empty."""
    return [s.strip() for s in _SENT_RE.findall(text or "") if s.strip()]


@dataclass(frozen=True)
class ElicitationScores:
    """Per-prompt elicitation result, parallel to the ``ids`` passed in.

    ``similarity`` float32 (n,): best cosine over the views and exemplars; ``is_elicitation`` bool
    (n,); ``threshold`` the cut used; ``null_quantile`` the null's 99.9th percentile.
    """

    similarity: np.ndarray
    is_elicitation: np.ndarray
    threshold: float
    null_quantile: float
    n_encoded: int


def score_elicitation(
    con: duckdb.DuckDBPyConnection,
    ids: np.ndarray,
    vecs: np.ndarray,
    encoder,
    *,
    min_similarity: float = 0.5,
    max_encode: int = 200_000,
    block: int = 65_536,
) -> ElicitationScores:
    """Score every prompt in ``ids`` (int64, sorted) against the exemplars.

    Args:
        vecs: float32 or float16 (n, dim) L2-normalised prompt vectors, parallel to ``ids``.
        encoder: object with ``encode(list[str]) -> float32 (k, dim)`` normalised vectors.
        min_similarity: floor under the data-calibrated threshold.
        max_encode: at most this many cue prompts get their sentences encoded (the lowest prompt
            ids by hash order, so the choice is deterministic); the rest keep the whole-prompt view.
        block: prompts per matrix product (bounds memory).
    """
    t0 = time.monotonic()
    n = len(ids)
    ex = np.asarray(encoder.encode(list(EXEMPLARS)), dtype=np.float32)
    sim = np.zeros(n, dtype=np.float32)
    for i in range(0, n, block):
        rows = np.asarray(vecs[i : i + block], dtype=np.float32)
        sim[i : i + block] = (rows @ ex.T).max(axis=1) if len(ex) else 0.0
    cue = con.execute(
        f"""
        SELECT prompt_id, text FROM prompts
        WHERE regexp_matches(lower(text), '{CUE_PATTERN}')
        ORDER BY hash(prompt_id), prompt_id LIMIT {int(max_encode)}
        """
    ).fetchall()
    has_cue_ids = np.asarray(
        con.execute(f"SELECT prompt_id FROM prompts WHERE regexp_matches(lower(text), '{CUE_PATTERN}')")
        .fetchnumpy()["prompt_id"],
        dtype=np.int64,
    )
    is_cue = np.isin(ids, has_cue_ids)
    n_encoded = 0
    if cue:
        # First and last sentences of cue prompts; a one-sentence prompt is covered by its vector.
        sent_pid: list[int] = []
        sents: list[str] = []
        for pid, text in cue:
            ss = split_sentences(text)
            if len(ss) >= 2:
                # dict, not set: a set's order follows the process's string hash seed, and the order of
                # the sentences sets the encoder's batches, whose padding moves the last float digits.
                for s in dict.fromkeys((ss[0], ss[-1])):
                    sent_pid.append(pid)
                    sents.append(s)
        if sents:
            sv = np.asarray(encoder.encode(sents), dtype=np.float32)
            ssim = (sv @ ex.T).max(axis=1)
            sp = np.asarray(sent_pid, dtype=np.int64)
            pos = np.searchsorted(ids, sp)
            ok = (pos < n) & (ids[np.clip(pos, 0, max(n - 1, 0))] == sp)
            np.maximum.at(sim, pos[ok], ssim[ok])
            n_encoded = len(sents)
    null = sim[~is_cue]
    nq = float(np.quantile(null, 0.999)) if len(null) else 0.0
    thr = max(min_similarity, nq)
    flag = is_cue & (sim > thr)
    log.info("elicitation: %d of %d prompts (threshold %.3f, %d sentences encoded) in %.1f s",
             int(flag.sum()), n, thr, n_encoded, time.monotonic() - t0)
    return ElicitationScores(sim, flag, thr, nq, n_encoded)


def elicitation_table(scores: ElicitationScores, ids: np.ndarray) -> pa.Table:
    """Arrow table ``(prompt_id, elicit_sim, is_elicit)`` for joins in DuckDB."""
    return pa.table({"prompt_id": ids, "elicit_sim": scores.similarity, "is_elicit": scores.is_elicitation})
