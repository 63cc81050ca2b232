"""The JSON-over-HTTPS transport the forge clients share (standard library only).

Retries 5xx, 429 and rate limits (403 with Retry-After or a zero remaining quota) within a bounded budget of
attempts and seconds; anything else is returned to the caller's `explain` as one clear error. Secrets go only
into request headers: they are never printed, logged or put in an exception.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tfgate.errors import TfgateError


class ForgeError(TfgateError):
    """A forge API call failed (exit 2 unless the caller tolerates it)."""


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    max_wait: float = 60.0  # seconds of waiting in total, across retries
    backoff: float = 1.0


@dataclass(frozen=True)
class Call:
    """One API call as the caller describes it; `headers` may hold a secret and is never shown."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: dict[str, Any] | None = None


def send(
    call: Call,
    *,
    retry: Retry,
    sleep: Callable[[float], None],
    timeout: float,
    explain: Callable[[int, str], ForgeError],
    unreachable: Callable[[object], ForgeError],
) -> tuple[Any, dict[str, str]]:
    """JSON in, JSON out; returns (data, lower-cased headers). `explain(status, detail)` and
    `unreachable(reason)` build the error raised once retrying is over or pointless."""
    data = json.dumps(call.body).encode() if call.body is not None else None
    waited = 0.0
    for attempt in range(1, retry.attempts + 1):
        req = urllib.request.Request(call.url, data=data, method=call.method)
        for key, value in call.headers.items():
            req.add_header(key, value)
        req.add_header("User-Agent", "tfgate")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
                try:
                    return (json.loads(raw) if raw else None), headers
                except ValueError:
                    raise explain(resp.status, "the answer is not JSON") from None
        except urllib.error.HTTPError as exc:
            headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
            detail = _message(exc.read())
            wait = retry_after(exc.code, headers, attempt, retry)
            if wait is not None and attempt < retry.attempts and waited + wait <= retry.max_wait:
                sleep(wait)
                waited += wait
                continue
            raise explain(exc.code, detail) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            wait = retry.backoff * attempt
            if attempt < retry.attempts and waited + wait <= retry.max_wait:
                sleep(wait)
                waited += wait
                continue
            raise unreachable(getattr(exc, "reason", exc)) from None
    raise unreachable(f"gave up after {retry.attempts} attempts")  # pragma: no cover


def retry_after(status: int, headers: Mapping[str, str], attempt: int, retry: Retry) -> float | None:
    """Seconds to wait before retrying, or None when the failure is not transient. Honours Retry-After and
    the rate-limit headers of GitHub (x-ratelimit-*) and GitLab (ratelimit-*); reset is a Unix time."""
    if "retry-after" in headers and status in (403, 429, 500, 502, 503, 504):
        try:
            return max(0.0, float(headers["retry-after"]))
        except ValueError:
            return retry.backoff * attempt
    remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining"))
    if status in (403, 429) and remaining == "0":
        reset = headers.get("x-ratelimit-reset", headers.get("ratelimit-reset", "0"))
        try:
            return max(0.0, float(reset) - time.time()) + 1
        except ValueError:
            return None
    if status == 429 or status >= 500:
        return retry.backoff * attempt
    return None


def next_link(link: str) -> str | None:
    """The `rel="next"` URL of an RFC 8288 Link header (GitHub and GitLab both paginate with it)."""
    for part in link.split(","):
        section = part.split(";")
        if len(section) >= 2 and any(p.strip() in ('rel="next"', "rel=next") for p in section[1:]):
            return section[0].strip().strip("<>")
    return None


def _message(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:200]
    return ""
