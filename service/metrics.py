"""Prometheus text exposition of the service's figures, written by hand (format 0.0.4).

Requests by endpoint (the route's template, so account ids never become labels), method and status; a
latency histogram per endpoint; verdicts of checks; and gauges read from the checker's health: indexed
prompts, the delta index's prompts and exchanges, the snapshot's version and age. Counting takes one lock
per request; nothing here touches the workspace.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

from engine import CheckerHealth

# Seconds: a check is a few milliseconds on the fast tier, tens with the transformer on a CPU.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, int]] = Counter()
        self._buckets: dict[str, list[int]] = {}
        self._sums: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._verdicts: Counter[str] = Counter()

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(endpoint, method, int(status))] += 1
            buckets = self._buckets.setdefault(endpoint, [0] * len(BUCKETS))
            for i, edge in enumerate(BUCKETS):
                if seconds <= edge:
                    buckets[i] += 1
            self._sums[endpoint] += seconds
            self._counts[endpoint] += 1

    def verdict(self, verdict: str) -> None:
        with self._lock:
            self._verdicts[verdict] += 1

    def render(self, health: CheckerHealth | None) -> str:
        """The exposition text; gauges only once the checker has started."""
        out: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            out.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])

        with self._lock:
            family("copyhound_requests_total", "counter", "HTTP requests by endpoint, method and status.")
            for (endpoint, method, status), n in sorted(self._requests.items()):
                out.append(f'copyhound_requests_total{{endpoint="{_label(endpoint)}",method="{method}",'
                           f'status="{status}"}} {n}')
            family("copyhound_request_seconds", "histogram", "Time to answer a request, by endpoint.")
            for endpoint in sorted(self._buckets):
                label = _label(endpoint)
                for edge, n in zip(BUCKETS, self._buckets[endpoint], strict=True):
                    out.append(f'copyhound_request_seconds_bucket{{endpoint="{label}",le="{edge}"}} {n}')
                out.append(f'copyhound_request_seconds_bucket{{endpoint="{label}",le="+Inf"}} {self._counts[endpoint]}')
                out.append(f'copyhound_request_seconds_sum{{endpoint="{label}"}} {self._sums[endpoint]:.6f}')
                out.append(f'copyhound_request_seconds_count{{endpoint="{label}"}} {self._counts[endpoint]}')
            family("copyhound_checks_total", "counter", "Checks answered, by verdict.")
            for verdict, n in sorted(self._verdicts.items()):
                out.append(f'copyhound_checks_total{{verdict="{verdict}"}} {n}')
        family("copyhound_ready", "gauge", "1 once a snapshot of the workspace is read, else 0.")
        out.append(f"copyhound_ready {int(health is not None and health.status == 'ok')}")
        if health is not None:
            for name, value, text in (
                ("copyhound_index_prompts", health.indexed_prompts, "Prompts in the workspace's FAISS index."),
                ("copyhound_unindexed_prompts", health.unindexed_prompts, "Stored prompts not embedded yet."),
                ("copyhound_delta_prompts", health.recent_prompts, "Distinct prompts in the delta index."),
                ("copyhound_delta_exchanges", health.recent_exchanges, "Exchanges in the delta index."),
                ("copyhound_delta_limit", health.recent_limit, "Exchanges the delta index holds at most."),
                ("copyhound_snapshot_version", health.snapshot, "Version of the snapshot answering."),
                ("copyhound_snapshot_age_seconds", _age(health.snapshot_loaded), "Seconds since it was read."),
            ):
                family(name, "gauge", text)
                out.append(f"{name} {value}")
        return "\n".join(out) + "\n"


def _age(loaded: datetime | None) -> float:
    return 0.0 if loaded is None else round((datetime.now() - loaded).total_seconds(), 3)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
