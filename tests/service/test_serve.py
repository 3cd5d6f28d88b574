"""`copyhound serve` for real: the service in its own process over a scanned workspace, called over HTTP.

Verdicts for campaign content, an organic copy and a novel prompt; who-else rows equal to the Engine's;
account and ring lookups; every kind of bad request answered 4xx with a one-line reason; the bearer
token; the body limit; the delta index finding a copy sent a moment earlier by another new account; and
the service answering while another process holds the workspace's write lock, then reading what it
committed; an analyst's confirmed ring watched and benign family discounted after the next scan. Nothing here
measures time: the deadlines only bound the waits.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time

import pytest

from engine import Engine, ServiceError
from engine.cli.main import main
from tests.fixtures.imports import ROOT
from tests.service.conftest import MAX_BODY, TOKEN, Served

RING = tuple(f"ring_{m}" for m in range(6))
NOVEL = "Compose a limerick about a lighthouse keeper in Tromso who collects antique porcelain teapots."
NOVEL_COPY = "hey! compose a limerick about a lighthouse keeper in Tromso who collects antique porcelain tea pots"
UNRELATED = "List three differences between the tax rules for sole traders in Norway and in Portugal."


@pytest.fixture(scope="module")
def http(server):
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def ring_id(served_workspace) -> int:
    scored = {a.account_id: a for a in Engine(served_workspace, read_only=True).accounts(limit=None)}
    rings = {scored[a].ring_id for a in RING}
    assert len(rings) == 1 and None not in rings, "the scan must find the six ring accounts as one ring"
    return rings.pop()


def _check(http, account: str, prompt: str, **extra) -> dict:
    response = http.post("/v1/check", json={"account_id": account, "prompt": prompt, **extra})
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------- verdicts
def test_campaign_content_is_a_known_campaign(http, organic, served_workspace, ring_id):
    # The ring pasted perturbed copies of organic[150..161]; the clean text is a near-copy of each.
    body = _check(http, "gw_new_1", organic[150], timestamp="2026-03-01T10:00:00Z")
    assert body["verdict"] == "known_campaign", body["reason"]
    assert body["ring_id"] == ring_id
    assert body["n_campaign_accounts"] == 6 and body["n_recent_accounts"] == 0
    campaign = [e for e in body["evidence"] if e["campaign"]]
    assert {e["account_id"] for e in campaign} == set(RING) and body["evidence"][:6] == campaign
    assert body["account"] is None, "a never-seen account has no standing"
    assert body["exchange_id"].startswith("serve-") and "known campaign" in body["reason"]
    # The id the analyst opens is the TUI's prompt view of the match.
    view = Engine(served_workspace, read_only=True).analyst.prompt_view(body["prompt_id"])
    assert view.text == body["match_text"] and view.family_id == body["family_id"]
    assert {a.account_id for a in view.accounts} >= set(RING[:1])


def test_an_organic_copy_is_a_near_copy_and_a_new_prompt_is_nothing(http, organic):
    body = _check(http, "gw_new_2", organic[0])  # org_00 sent it, nobody else
    assert body["verdict"] == "near_copy", body["reason"]
    assert [(e["account_id"], e["exact"]) for e in body["evidence"]] == [("org_00", True)]
    assert body["ring_id"] is None and body["n_campaign_accounts"] == 0 and body["similarity"] == 1.0
    body = _check(http, "gw_new_3", UNRELATED, timestamp=1772000000)
    assert body["verdict"] == "none" and body["n_accounts"] == 0 and body["prompt_id"] is None


def test_a_ring_member_gets_its_standing_with_the_verdict(http, organic, ring_id):
    body = _check(http, "ring_0", organic[151])
    assert body["verdict"] == "known_campaign"
    account = body["account"]
    assert account["known"] and account["flagged"] and account["ring_id"] == ring_id
    assert account["score"] >= 0.5 and 0 < len(account["signals"]) <= 3
    assert "ring_0" not in {e["account_id"] for e in body["evidence"]}, "an account is no evidence against itself"


def test_account_and_ring_lookups(http, ring_id):
    account = http.get("/v1/accounts/ring_0").json()
    assert account["known"] and account["flagged"] and account["n_exchanges"] == 12 and account["signals"]
    assert http.get("/v1/accounts/org_00").json()["flagged"] is False
    ring = http.get(f"/v1/rings/{ring_id}").json()
    assert sorted(ring["ring"]["accounts"]) == list(RING) and ring["family_ids"]


def test_who_else_answers_the_engines_rows(http, organic, served_workspace, real_encoder):
    queries = [organic[150], organic[0], UNRELATED]
    engine = Engine(served_workspace, read_only=True, encoder=real_encoder)
    for threshold in (None, 0.9):
        expected = engine.who_else(queries, threshold=threshold)
        body = http.post("/v1/who-else", json={"prompts": queries, "threshold": threshold}).json()
        assert body["rows"] == [r.to_dict() for r in expected.rows]
        assert body["threshold"] == expected.threshold and body["n_queries"] == 3
    assert {r["account_id"] for r in body["rows"] if r["query_index"] == 0} >= set(RING)


# ---------------------------------------------------------------------- the delta index
def test_a_copy_sent_a_moment_earlier_by_another_new_account_is_seen(http, server, served_workspace):
    first = _check(http, "burst_a", NOVEL)
    assert first["verdict"] == "none"
    second = _check(http, "burst_b", NOVEL_COPY)
    assert second["verdict"] == "near_copy", second["reason"]
    assert second["n_accounts"] == 1 and second["n_recent_accounts"] == 1
    assert [(e["account_id"], e["source"]) for e in second["evidence"]] == [("burst_a", "recent")]
    assert second["match_text"] == NOVEL and second["prompt_id"] is None
    third = _check(http, "burst_c", NOVEL)
    assert third["n_recent_accounts"] == 2 and third["exact"]
    account = http.get("/v1/accounts/burst_a").json()
    assert not account["known"] and account["n_recent_exchanges"] == 1 and account["score"] is None
    assert server.health()["recent_exchanges"] >= 3
    # Each checked exchange is a line `copyhound ingest` reads, on disk before the answer.
    lines = [json.loads(line) for f in sorted((served_workspace / "incoming").glob("serve-*.jsonl"))
             for line in f.read_text(encoding="utf-8").splitlines()]
    recorded = {row["exchange_id"]: row for row in lines}
    assert recorded[second["exchange_id"]]["prompt"] == NOVEL_COPY
    assert set(recorded[first["exchange_id"]]) == {"exchange_id", "account_id", "timestamp", "prompt"}


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize(("method", "path", "body", "status", "reason"), [
    ("POST", "/v1/check", b"{not json", 400, "malformed JSON"),
    ("POST", "/v1/check", b"", 400, "empty body"),
    ("POST", "/v1/check", b"[1, 2]", 400, "expected a JSON object, not a list"),
    ("POST", "/v1/check", {}, 400, "missing field 'account_id'"),
    ("POST", "/v1/check", {"account_id": "a"}, 400, "missing field 'prompt'"),
    ("POST", "/v1/check", {"account_id": "a", "prompt": 5}, 400, "field 'prompt' must be a string, not a number"),
    ("POST", "/v1/check", {"account_id": True, "prompt": "hi"}, 400, "not a boolean"),
    ("POST", "/v1/check", {"account_id": "a", "prompt": "hi", "timestamp": "yesterday"}, 400, "unparseable timestamp"),
    ("POST", "/v1/check", {"account_id": "a", "prompt": "hi", "timestamp": "1990-01-01"}, 400, "out of range"),
    ("POST", "/v1/check", {"account_id": "a\nb", "prompt": "hi"}, 400, "control character"),
    ("POST", "/v1/check", {"account_id": "a", "prompt": " \u200b "}, 400, "empty prompt"),
    ("POST", "/v1/who-else", {"prompts": []}, 400, "give at least one prompt"),
    ("POST", "/v1/who-else", {"prompts": "hi"}, 400, "must be a list"),
    ("POST", "/v1/who-else", {"prompts": ["hi", 3]}, 400, "prompts[1] must be a string"),
    ("POST", "/v1/who-else", {"prompts": ["hi"], "threshold": 3}, 400, "threshold must be a cosine"),
    ("GET", "/v1/accounts/nobody-at-all", None, 404, "no account 'nobody-at-all'"),
    ("GET", "/v1/rings/999999", None, 404, "no ring 999999"),
    ("GET", "/v1/rings/seven", None, 400, "ring ids are whole numbers"),
    ("GET", "/v1/check", None, 405, "does not take GET"),
    ("GET", "/v2/check", None, 404, "no endpoint GET /v2/check"),
])
def test_bad_requests_get_a_4xx_with_a_one_line_reason(http, method, path, body, status, reason):
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
    response = http.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert reason in error and "\n" not in error and "Traceback" not in error


def test_the_bearer_token_is_required_except_for_health(server):
    with server.client(token=None) as anonymous, server.client(token="not-the-token") as wrong:
        for client, reason in ((anonymous, "missing bearer token"), (wrong, "wrong bearer token")):
            for method, path in (("POST", "/v1/check"), ("GET", "/v1/accounts/ring_0"), ("GET", "/metrics")):
                response = client.request(method, path, json={"account_id": "a", "prompt": "hi"})
                assert response.status_code == 401 and reason in response.json()["error"]
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.get("/v1/health").status_code == 200


def test_a_body_over_the_limit_is_refused_whether_its_length_is_declared_or_not(http):
    big = json.dumps({"account_id": "a", "prompt": "word " * (MAX_BODY // 4)}).encode()
    assert len(big) > MAX_BODY
    declared = http.post("/v1/check", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "over the limit" in declared.json()["error"]
    chunked = http.post("/v1/check", content=iter([big[i:i + 8192] for i in range(0, len(big), 8192)]))
    assert chunked.status_code == 413 and "over the limit" in chunked.json()["error"]


def test_metrics_count_requests_and_show_the_index(http):
    http.get("/v1/accounts/nobody-at-all")
    text = http.get("/metrics").text
    assert 'copyhound_requests_total{endpoint="/v1/accounts/{account_id:path}",method="GET",status="404"}' in text
    assert 'copyhound_request_seconds_bucket{endpoint="/v1/check",le="+Inf"}' in text
    assert "copyhound_index_prompts 194" in text and "copyhound_ready 1" in text
    assert "copyhound_delta_exchanges " in text and 'copyhound_checks_total{verdict="' in text


# ---------------------------------------------------------------------- a writer at work
def test_answers_while_another_process_writes_then_reads_what_it_committed(tmp_path, served_workspace,
                                                                          real_encoder):
    ws = tmp_path / "ws"
    shutil.copytree(served_workspace, ws, ignore=shutil.ignore_patterns("incoming"))
    with Served(ws, tmp_path / "service.log") as server, server.client() as http:
        first = _check(http, "fresh_a", NOVEL)
        assert first["verdict"] == "none"
        version = server.health()["snapshot"]
        # A real `copyhound ingest` of the file the service wrote, in another process, while it serves.
        incoming = sorted((ws / "incoming").glob("serve-*.jsonl"))
        ingest = subprocess.run([sys.executable, "-m", "engine.cli.main", "ingest", "-w", str(ws), "-q", "-f", "json",
                                 *map(str, incoming)], cwd=ROOT, capture_output=True, text=True)
        assert ingest.returncode == 0, ingest.stderr
        assert json.loads(ingest.stdout)[0]["rows_loaded"] == 1
        # This process embeds the new prompt and rebuilds the sender index, as a scan does, then holds
        # the writer's lock and commits under it, as a scan's long stage does.
        writer = Engine(ws, encoder=real_encoder)
        writer.embed()
        writer.who_else([NOVEL])
        with writer.store.connect() as con:
            con.execute("INSERT INTO marks (target_kind, target_id, label, note, created) "
                        "VALUES ('account', 'ring_0', 'suspicious', 'held', now())")
            waited = _until(lambda: _check(http, "during", UNRELATED) and server.health()["waiting"])
            assert "busy" in waited, "the service should say a writer holds the workspace"
            assert server.health()["snapshot"] == version
        # Released: the next snapshot holds fresh_a's exchange, so the delta lets go of it.
        health = _until(lambda: (h := server.health())["snapshot"] > version and not h["waiting"] and h)
        assert health["unindexed_prompts"] == 0
        second = _check(http, "fresh_b", NOVEL_COPY)
        assert second["verdict"] == "near_copy"
        assert [(e["account_id"], e["source"]) for e in second["evidence"]][:1] == [("fresh_a", "workspace")]
        assert http.get("/v1/accounts/fresh_a").json()["known"]
    assert server.proc.returncode == 0, server.tail()


# ---------------------------------------------------------------------- analysts' verdicts
def test_a_confirmed_ring_is_watched_and_a_benign_family_is_no_ring_content(tmp_path, served_workspace, real_encoder,
                                                                            organic, ring_id):
    ws = tmp_path / "ws"
    shutil.copytree(served_workspace, ws, ignore=shutil.ignore_patterns("incoming"))
    with Served(ws, tmp_path / "service.log") as server, server.client() as http:
        before = {i: _check(http, f"gw_before_{i}", organic[i]) for i in (150, 155)}
        assert all(b["verdict"] == "known_campaign" and b["ring_id"] == ring_id for b in before.values())
        assert before[150]["family_id"] != before[155]["family_id"]
        assert not any("watch" in b["reason"] for b in before.values())
        version = server.health()["snapshot"]
        # The analyst confirms the ring and calls one of its families benign; the nightly scan runs.
        writer = Engine(ws, encoder=real_encoder)
        writer.analyst.mark("ring", ring_id, "confirmed", "distillation ring", author="ana")
        writer.analyst.mark("family", before[155]["family_id"], "benign", "a public quiz", author="bo")
        writer.scan()
        _until(lambda: server.health()["snapshot"] > version)
        watched = _check(http, "gw_after_150", organic[150])
        assert watched["verdict"] == "known_campaign"
        assert "confirmed" in watched["reason"] and "ana" in watched["reason"], watched["reason"]
        # The mark on the family itself beats the ring's: not watched, and no longer counted as the members'
        # shared content (still known campaign content: its senders are the flagged ring).
        benign = _check(http, "gw_after_155", organic[155])
        assert "confirmed" not in benign["reason"], benign["reason"]
        signals = {s["name"]: s for s in http.get("/v1/accounts/ring_0").json()["signals"]}
        assert "bo" in signals["benign_content"]["detail"] and "ana" in signals["watchlist"]["detail"]
    assert server.proc.returncode == 0, server.tail()


def _until(probe, deadline: float = 120.0):
    """The first truthy value of `probe()`, polled until `deadline` seconds have passed."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"gave up after {deadline:.0f} s")


# ---------------------------------------------------------------------- the command
def test_copyhound_serve_opens_the_workspace_read_only_with_its_options(served_workspace, tmp_path, monkeypatch,
                                                                       capsys):
    calls = []
    monkeypatch.setattr("engine.cli.serve.load_frontend",
                        lambda name: lambda engine, **options: calls.append((name, engine, options)))
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    ws = str(served_workspace)
    assert main(["serve", "-w", ws, "--port", "0", "--token-file", str(token_file), "--max-body", "1000"]) == 0
    name, engine, options = calls[-1]
    assert name == "serve" and engine.store.read_only
    assert options == {"host": "127.0.0.1", "port": 0, "token": TOKEN, "max_body": 1000, "delta_limit": None,
                       "sync_every": 0.1}
    monkeypatch.setenv("COPYHOUND_TOKEN", "from-env")
    assert main(["serve", "-w", ws]) == 0 and calls[-1][2]["token"] == "from-env"
    token_file.write_text("\n")
    assert main(["serve", "-w", ws, "--token-file", str(token_file)]) == 2
    assert capsys.readouterr().err.strip().endswith("the token file is empty")
    with pytest.raises(SystemExit):
        main(["serve", "-w", ws, "--port", "70000"])
    assert main(["serve", "-w", ws, "--sync-every", "0"]) == 0 and calls[-1][2]["sync_every"] == 0.0
    with pytest.raises(SystemExit):
        main(["serve", "-w", ws, "--sync-every", "-1"])


def test_a_taken_port_is_one_line(served_workspace):
    from service import run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServiceError, match=f"cannot listen on 127.0.0.1:{port}"):
            run(Engine(served_workspace, read_only=True), port=port)

