"""Request bodies: read under the size limit, parsed as JSON, fields type-checked, each refusal one line.

What a field's value must be beyond its JSON type (an account id without control characters, a time in
the accepted range, a prompt ingest would take) is the engine's rule (engine.ingest.incoming), raised as
a QueryError and answered 400 like these.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

# Prompts one who-else request may ask about.
MAX_QUERIES = 256


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 413 past `limit` bytes (before reading it, when the length is declared)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPException(400, f"bad Content-Length header {declared[:20]!r}") from None
        if size > limit:
            raise HTTPException(413, f"body of {size} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body over the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise HTTPException(400, "empty body: expected a JSON object")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as err:
        raise HTTPException(400, f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except UnicodeDecodeError:
        raise HTTPException(400, "the body is not UTF-8 text") from None
    except RecursionError:
        raise HTTPException(400, "malformed JSON: nested too deep") from None
    if not isinstance(body, dict):
        raise HTTPException(400, f"expected a JSON object, not {_kind(body)}")
    return body


def check_fields(body: dict[str, Any]) -> dict[str, Any]:
    """`{account_id, prompt, timestamp?}` -> keyword arguments of `Checker.check`."""
    account = _field(body, "account_id", (str, int))
    prompt = _field(body, "prompt", (str,))
    timestamp = _field(body, "timestamp", (str, int, float), required=False)
    return {"account_id": str(account), "prompt": prompt, "timestamp": timestamp}


def who_else_fields(body: dict[str, Any], max_queries: int = MAX_QUERIES) -> dict[str, Any]:
    """`{prompts: [...], threshold?}` -> keyword arguments of `Checker.who_else`."""
    prompts = _field(body, "prompts", (list,))
    if not prompts:
        raise HTTPException(400, "field 'prompts' is empty: give at least one prompt")
    if len(prompts) > max_queries:
        raise HTTPException(400, f"field 'prompts' holds {len(prompts)} prompts; at most {max_queries} a request")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise HTTPException(400, f"prompts[{i}] must be a string, not {_kind(p)}")
    threshold = _field(body, "threshold", (int, float), required=False)
    return {"queries": prompts, "threshold": None if threshold is None else float(threshold)}


def _field(body: dict[str, Any], name: str, types: tuple[type, ...], *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise HTTPException(400, f"missing field {name!r}")
        return None
    # bool is an int to Python, never to a caller who meant a number.
    if isinstance(value, bool) or not isinstance(value, types):
        wanted = " or ".join(dict.fromkeys(_TYPE_NAMES[t] for t in types))
        raise HTTPException(400, f"field {name!r} must be {wanted}, not {_kind(value)}")
    return value


_TYPE_NAMES = {str: "a string", int: "a number", float: "a number", list: "a list"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
