"""Refit the static tier's reference centre from synthetic traffic and write it as a new versioned file.

The static encoder (engine/encoders/static.py) subtracts a fixed mean vector from every prompt vector
and projects out one fixed principal direction. Both ship as package data,
``engine/encoders/data/static_centre_v<N>.npy`` (float32, shape (2, 256): row 0 the mean, row 1 the
direction), and the encoder checks the file against the sha256 written in its code. This tool is how
such a file is made: it fits the centre on the organic prompts of `synth` traffic at a fixed seed,
uncentred static vectors of the distinct normalised prompts, as the encoder once did at first use.

It lives outside the installed packages on purpose: it is the only code that joins `synth` to the
encoder, so editing the generator's word lists changes no vector until someone runs it, and the engine
never imports `synth` at run time. (Not in `bench/`, whose scripts measure and never write package data.)

When to run it: only when the centre should change (a new generator vocabulary that the reference
should follow, a new distilled table, other reference settings). A new centre changes every static
vector, so it is a new version, never an edit of an existing file:

1. ``python tools/refit_static_centre.py --version N`` (N = the last version + 1) writes
   ``static_centre_vN.npy`` and prints its sha256 (about 30 s: distilling the table, when ``--cache``
   holds none, then 20,000 exchanges generated and encoded);
2. set ``CENTRE_FILE`` and ``CENTRE_SHA256`` in engine/encoders/static.py to the new name and sha256;
3. re-measure the static thresholds (`bench/threshold.py --encoder static`) and update
   ``engine.config.ENCODER_THRESHOLDS``: they were chosen for the old centre.

Workspaces keep the centre they were first scanned with (a copy in ``models/``), so their vectors do not
change under them; only new workspaces get the new version. ``--version 1`` reproduces the shipped
``static_centre_v1.npy`` byte for byte on the machine it was made on (x86-64, numpy 2.4 with its bundled
OpenBLAS) and says so; the SVD's low bits and sign can differ elsewhere, which is one more reason the
centre is shipped rather than fitted at first use.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from engine.encoders.base import MODEL_SHA256, model_dir, verify_weights
from engine.encoders.static import STATIC_DIMS, StaticEncoder, load_or_distill
from engine.ingest.fingerprint import normalize
from synth import SynthConfig, write_synth

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[1] / "engine" / "encoders" / "data"
# The reference: organic prompts of this many synthetic exchanges at this seed (about 2 s to generate
# and encode; 13,052 distinct prompts in version 1).
REFERENCE_EXCHANGES = 20_000
REFERENCE_SEED = 0


def fit_centre(encoder: StaticEncoder, exchanges: int = REFERENCE_EXCHANGES,
               seed: int = REFERENCE_SEED) -> tuple[np.ndarray, int]:
    """The centre (2, STATIC_DIMS) float32 (mean, first principal direction) and the prompts it was fitted on.

    `encoder` must be uncentred (``StaticEncoder.from_table(table)``): the fit is on raw static vectors.
    Only accounts the truth file marks organic count; each distinct normalised prompt counts once, and
    empty vectors (prompts with no word piece) not at all.
    """
    assert encoder.centre is None, "fit on uncentred vectors"
    with tempfile.TemporaryDirectory() as tmp:
        run = write_synth(SynthConfig(exchanges=exchanges, seed=seed), Path(tmp) / "reference.jsonl")
        organic = {a for a, campaign in json.loads(run.truth_path.read_text())["accounts"].items()
                   if campaign is None}
        with open(run.path, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
    texts = list(dict.fromkeys(normalize(r["prompt"]) for r in rows if r["account_id"] in organic))
    vecs = encoder.encode(texts)
    vecs = vecs[np.linalg.norm(vecs, axis=1) > 0]
    mean = vecs.mean(0)
    _, _, vt = np.linalg.svd(vecs - mean, full_matrices=False)
    centre = np.stack([mean.astype(np.float32), vt[0].astype(np.float32)])
    log.info("static centre fitted on %d reference prompts", len(vecs))
    return centre, len(vecs)


def centre_bytes(centre: np.ndarray) -> bytes:
    """The .npy bytes of a centre: header and raw float32, the same bytes for the same values."""
    assert centre.shape == (2, STATIC_DIMS) and centre.dtype == np.float32
    buf = io.BytesIO()
    np.save(buf, centre, allow_pickle=False)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", type=int, required=True, help="version number of the new file")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder holding (or to hold) the distilled static table; default a temporary one")
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR, help=f"where to write (default {DATA_DIR})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        table = load_or_distill(cache, model_dir(), MODEL_SHA256, verify_weights)
        centre, prompts = fit_centre(StaticEncoder.from_table(table))
    data = centre_bytes(centre)
    sha = hashlib.sha256(data).hexdigest()
    out = args.out_dir / f"static_centre_v{args.version}.npy"
    if out.exists():
        if out.read_bytes() != data:
            print(f"{out} exists with other values (sha256 {sha} refitted): a new centre takes a new version",
                  file=sys.stderr)
            return 1
        print(f"{out} is unchanged ({prompts} reference prompts)", file=sys.stderr)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        print(f"wrote {out} ({prompts} reference prompts); set CENTRE_FILE and CENTRE_SHA256 in "
              "engine/encoders/static.py and re-measure the static thresholds", file=sys.stderr)
    print(sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
