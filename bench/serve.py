"""Load test of `copyhound serve` over HTTP (httpx): one client's latencies, then N clients' throughput.

    python -m bench.serve WORKSPACE --label 1m_static                 # starts the service on WORKSPACE
    python -m bench.serve WORKSPACE --label 1m_static --during-scan   # and a `scan --force` meanwhile
    python -m bench.serve WORKSPACE --url http://127.0.0.1:8750 --token-file F --label gw   # one running

The service is started in its own process (as `copyhound serve` does: the workspace opened read-only,
its own encoder) unless --url names one already running; the workspace is still read here, read-only, to
draw the checks. Checks are a fixed mix drawn with --seed: a third stored prompts sent again (exact
copies), a third perturbed copies of stored prompts (bench.common.perturb: typos, greetings, homoglyphs...),
a third stored prompts with their words shuffled (novel text, mostly verdict none); each from its own
new account. First one client sends --requests checks one after another (after --warmup unmeasured
ones): latency percentiles. Then --clients clients (asyncio, one connection each) send --per-client
checks each as fast as answers come: checks per second and their latencies; with --client both (the
default) once with httpx clients and once with a minimal keep-alive HTTP/1.1 client (`RawConnection`),
because on a 2-core machine the load generator shares the cores with the service and httpx's own CPU
time caps what it can measure; `concurrent` in the results is the last phase. With --during-scan a
`copyhound scan --force` runs on the workspace and the clients go on until it has finished; the run
reports how many checks failed while it wrote (the issue's acceptance: none). Every phase is bounded in
count and time (--max-seconds) and stops by itself; the service it starts listens on loopback only.

The service appends every checked exchange to WORKSPACE/incoming/serve-YYYYMMDD.jsonl: a run leaves that
file behind (delete it, or ingest it to see the exchanges in the workspace).

Writes bench/results/serve_<label>.json (--results-dir elsewhere for a trial run) and a table. Needs
httpx (the test extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.common import RESULTS, ROOT, envelope, percentiles, perturb, table, write_results
from engine import Engine

log = logging.getLogger("bench.serve")

# The service started here is `copyhound serve` without the argument parsing (the entry point may not be
# installed in a development checkout): an Engine opened read-only, handed to service.run.
_LAUNCH = ("import logging, sys; from engine import Engine; from service import run; "
           "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s'); "
           "run(Engine(sys.argv[1], read_only=True, busy_timeout=1.0), port=0, token=sys.argv[2] or None)")


def draw_checks(workspace: Path, n: int, seed: int) -> list[dict]:
    """`n` check bodies: exact copies, perturbed copies and shuffled (novel) prompts, a new account each."""
    engine = Engine(workspace, read_only=True)
    with engine.store.connect() as con:
        texts = [r[0] for r in con.execute(
            f"SELECT text FROM prompts USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE ({int(seed)}) "
            "ORDER BY prompt_id").fetchall()]
    if not texts:
        raise SystemExit(f"{workspace}: no prompts to draw checks from")
    rng = random.Random(seed)
    checks = []
    for i in range(n):
        text = texts[i % len(texts)]
        kind = i % 3
        if kind == 1:
            text = perturb(text, rng)[0]
        elif kind == 2:
            words = text.split()
            rng.shuffle(words)
            text = " ".join(words) or text
        checks.append({"account_id": f"bench-{seed}-{i:07d}", "prompt": text})
    rng.shuffle(checks)
    return checks


class Service:
    """The service in its own process, on a free port, until `stop()`."""

    def __init__(self, workspace: Path, token: str | None) -> None:
        self.log = Path(tempfile.mkstemp(prefix="bench-serve-", suffix=".log")[1])
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, str(workspace), token or ""], cwd=ROOT,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        self.url = self._wait()

    def _wait(self, deadline: float = 900.0) -> str:
        end, url = time.monotonic() + deadline, None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"the service exited:\n{self.log.read_text()[-3000:]}")
            if url is None:
                found = [line.split("listening on ", 1)[1].split()[0]
                         for line in self.log.read_text(errors="replace").splitlines() if "listening on http" in line]
                url = found[0] if found else None
            elif httpx.get(f"{url}/v1/health", timeout=30).status_code == 200:
                return url
            time.sleep(0.5)
        raise SystemExit(f"the service was not ready in {deadline:.0f} s; its log: {self.log}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._out.close()


def sequential(url: str, headers: dict, checks: list[dict], warmup: int) -> tuple[dict, Counter, Counter]:
    latencies, statuses, verdicts = [], Counter(), Counter()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for i, body in enumerate(checks):
            started = time.perf_counter()
            response = client.post("/v1/check", json=body)
            elapsed = time.perf_counter() - started
            if i < warmup:
                continue
            latencies.append(elapsed * 1000)
            statuses[response.status_code] += 1
            if response.status_code == 200:
                verdicts[response.json()["verdict"]] += 1
    return _summary(latencies), statuses, verdicts


class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a request written whole, the answer read by
    its Content-Length. It does what the checks need and no more, so that on a small machine the load
    generator, which shares the cores with the service, costs a fraction of what a general client does."""

    def __init__(self, url: str, headers: dict) -> None:
        parts = httpx.URL(url)
        self.host, self.port = parts.host, parts.port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader = self.writer = None

    async def post(self, path: str, body: dict) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\n{self.head}\r\n".encode() + data)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the service closed the connection")
        length = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise ConnectionError("an answer without Content-Length")
        json.loads(await self.reader.readexactly(length))  # parsed, as a gateway would
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def concurrent(url: str, headers: dict, checks: list[dict], clients: int, *, until=None,
                     max_seconds: float = 1800.0, raw: bool = False) -> tuple[dict, Counter]:
    """Each client sends its share of `checks`; with `until`, goes round its share again until `until()`
    is true (a scan has finished), but never past `max_seconds`. `raw`: a `RawConnection` per client
    instead of an httpx client."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    share = [checks[i::clients] for i in range(clients)]
    stop_at = time.monotonic() + max_seconds

    async def one(bodies: list[dict]) -> None:
        if raw:
            client = RawConnection(url, headers)
        else:
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            client = httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits)
        try:
            i = 0
            while (i < len(bodies) or (until is not None and not until())) and time.monotonic() < stop_at:
                body = bodies[i % len(bodies)]
                if i >= len(bodies):  # another round: new text, or the service would answer from its cache
                    body = dict(body, prompt=f"{body['prompt']} ({i // len(bodies)})")
                i += 1
                started = time.perf_counter()
                try:
                    if raw:
                        statuses[await client.post("/v1/check", body)] += 1
                    else:
                        statuses[(await client.post("/v1/check", json=body)).status_code] += 1
                except (httpx.TransportError, OSError) as err:
                    statuses[type(err).__name__] += 1
                    if raw:
                        await client.close()
                        client = RawConnection(url, headers)
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            await (client.close() if raw else client.aclose())

    started = time.perf_counter()
    await asyncio.gather(*(one(b) for b in share))
    seconds = time.perf_counter() - started
    figures = _summary(latencies)
    figures.update(clients=clients, seconds=round(seconds, 2), checks_per_s=round(len(latencies) / seconds, 1))
    return figures, statuses


def _summary(ms: list[float]) -> dict:
    p = percentiles(ms, (50, 95, 99))
    return {"n": len(ms), **{k + "_ms": None if v is None else round(v, 2) for k, v in p.items()},
            "max_ms": round(max(ms), 2) if ms else None, "mean_ms": round(sum(ms) / len(ms), 2) if ms else None}


def _snapshot_seen(url: str, headers: dict) -> dict:
    """The snapshot the service answers from: its version and the scan it reflects."""
    health = httpx.get(f"{url}/v1/health", headers=headers, timeout=30).json()
    return {"snapshot": health.get("snapshot"), "last_scan": health.get("last_scan"),
            "rings": health.get("rings"), "waiting": health.get("waiting")}


def _newer_snapshot(url: str, headers: dict, before: dict, max_seconds: float) -> dict:
    """Poll health until the service reads the state the scan committed (a newer last scan, no writer
    waited on) or max_seconds pass, so the run shows the service moved on to it, and how long after the
    scan ended. (The snapshot version alone moves on mid-scan too, at each of the scan's commits.)"""
    started = time.monotonic()
    while True:
        seen = _snapshot_seen(url, headers)
        waited = time.monotonic() - started
        if (seen["last_scan"] != before["last_scan"] and not seen["waiting"]) or waited > max_seconds:
            return dict(seen, seconds_after_scan=round(waited, 1))
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workspace", type=Path, help="a scanned workspace (the checks are drawn from it)")
    ap.add_argument("--label", required=True, help="results file bench/results/serve_LABEL.json")
    ap.add_argument("--url", help="a service already running on WORKSPACE (else one is started here)")
    ap.add_argument("--token-file", type=Path, help="its bearer token (--url), or the one to start it with")
    ap.add_argument("--requests", type=int, default=500, help="checks of the one-client phase")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--per-client", type=int, default=100, help="checks each concurrent client sends")
    ap.add_argument("--during-scan", action="store_true",
                    help="run `copyhound scan --force` meanwhile; the clients go on until it ends")
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="the concurrent phase stops by then")
    ap.add_argument("--client", choices=("httpx", "raw", "both"), default="both",
                    help="the concurrent phase's client: httpx, a minimal keep-alive HTTP/1.1 one (less CPU "
                         "taken from the service on a small machine), or both one after the other")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results-dir", type=Path, default=RESULTS, help="where serve_LABEL.json goes")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    token = args.token_file.read_text().strip() if args.token_file else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kinds = ["httpx", "raw"] if args.client == "both" else [args.client]
    if args.during_scan:
        kinds = kinds[-1:]  # one scan, one concurrent phase beside it
    n_one = args.warmup + args.requests
    checks = draw_checks(args.workspace, n_one + len(kinds) * args.clients * args.per_client, args.seed)
    status = Engine(args.workspace, read_only=True).status()
    service = None if args.url else Service(args.workspace, token)
    url = args.url or service.url
    phases: dict[str, dict] = {}
    many_status: Counter = Counter()
    try:
        one, one_status, verdicts = sequential(url, headers, checks[:n_one], args.warmup)
        log.info("one client: %s", one)
        scan = None
        before = after = None
        if args.during_scan:
            before = _snapshot_seen(url, headers)
            scan = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "scan", "--force", "-q", "-w",
                                     str(args.workspace)], cwd=ROOT)
        for k, kind in enumerate(kinds):
            start = n_one + k * args.clients * args.per_client
            figures, statuses = asyncio.run(concurrent(
                url, headers, checks[start:start + args.clients * args.per_client], args.clients,
                until=None if scan is None else (lambda: scan.poll() is not None), max_seconds=args.max_seconds,
                raw=kind == "raw"))
            phases[kind] = dict(figures, client=kind)
            many_status += statuses
            log.info("%d clients (%s): %s", args.clients, kind, figures)
        scan_code = scan.wait() if scan is not None else None
        if scan is not None:
            after = _newer_snapshot(url, headers, before, args.max_seconds)
        health = httpx.get(f"{url}/v1/health", timeout=30).json()
    finally:
        if service is not None:
            service.stop()
    many = phases[kinds[-1]]
    errors = sum(n for s, n in (one_status + many_status).items() if s != 200)
    result = envelope(
        "serve", label=args.label, workspace=str(args.workspace), exchanges=status.exchanges,
        prompts=status.prompts, accounts=status.accounts, encoder=health.get("encoder"),
        indexed_prompts=health.get("indexed_prompts"), one_client=one, concurrent=many,
        concurrent_by_client=phases,
        statuses={str(k): v for k, v in (one_status + many_status).items()}, errors=errors,
        verdicts_one_client=dict(verdicts),
        during_scan=None if scan_code is None else {"scan_exit": scan_code, "checks": many["n"],
                                                     "errors": sum(n for s, n in many_status.items() if s != 200),
                                                     "snapshot_before": before, "snapshot_after": after},
        recent_exchanges_after=health.get("recent_exchanges"))
    rows = [{"phase": "1 client", **one}] + [{"phase": f"{args.clients} clients ({kind})", **phases[kind]}
                                             for kind in kinds]
    summary = table(rows, ["phase", "n", "p50_ms", "p95_ms", "p99_ms", "max_ms", "checks_per_s"])
    summary += f"\nerrors {errors}; verdicts {json.dumps(dict(verdicts))}"
    write_results(f"serve_{args.label}", result, summary, results_dir=args.results_dir)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
