"""The doctor's Images API check: is ``OPENAI_API_KEY`` accepted and ``IMAGE_MODEL`` offered, without
generating an image? And which gateway answers (new-api, one-api, LiteLLM), read from its replies.

Order: ``GET /models/{model}``; when that route is missing, ``GET /models``; when both are missing, a request
to ``/images/generations`` that only validation answers (``n: 0`` can never produce an image).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import ipaddress
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import aiohttp

from bot.config.settings import Settings
from bot.images_api.errors import AuthenticationFailed, InsufficientQuota, PermissionDenied, error_from_response, redact
from bot.images_api.gateway import LITELLM, LITELLM_NO_STREAM, detect_gateway, recognise_gateway

NAME = "images api"


@dataclass
class Report:
    """Prints each line as it comes; remembers whether anything failed."""

    out: TextIO
    secrets: list[str] = field(default_factory=list)
    failed: int = 0
    passed: int = 0

    def line(self, status: str, name: str, text: str) -> None:
        if status == "FAIL":
            self.failed += 1
        elif status == "ok":
            self.passed += 1
        print(f"{status:<4} {name}: {redact(text, self.secrets)}", file=self.out, flush=True)

    def ok(self, name: str, text: str) -> None:
        self.line("ok", name, text)

    def fail(self, name: str, text: str) -> None:
        self.line("FAIL", name, text)

    def note(self, name: str, text: str) -> None:
        self.line("note", name, text)

    def warn(self, name: str, text: str) -> None:
        """Something the operator should know and probably change; does not fail the run."""
        self.line("warn", name, text)


def safe_url(url: str) -> str:
    """The URL without any credential (``bot/config/redaction.py``)."""
    return redact(url)


class _Seen:
    """Remembers the first gateway recognised across the replies."""

    def __init__(self) -> None:
        self.gateway: str | None = None

    def look(self, headers: Mapping[str, str], body: Any) -> None:
        # a later, more specific answer (an error body naming new-api) refines "new-api or one-api"
        found = recognise_gateway(headers, body)
        if found and (self.gateway is None or " or " in self.gateway):
            self.gateway = found

    def suffix(self) -> str:
        return f" (answered by {self.gateway})" if self.gateway else ""


async def _request(
    http: aiohttp.ClientSession, method: str, url: str, key: str, seen: _Seen, body: Any = None
) -> tuple[int, Any, Mapping[str, str]]:
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "imagebot-doctor/0.1", "Accept": "application/json"}
    async with http.request(method, url, headers=headers, json=body) as resp:
        raw = await resp.read()
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except ValueError:
            parsed = None
        seen.look(resp.headers, parsed)
        return resp.status, parsed, resp.headers


def _is_error_object(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def _key_problem(status: int, body: Any, headers: Mapping[str, str], key: str) -> str | None:
    """A line about a rejected key / exhausted account, or None when the answer is about something else."""
    if status not in (400, 401, 402, 403, 429):
        return None
    err = error_from_response(status, json.dumps(body) if body is not None else b"", headers, secrets=[key])
    if status == 400 and not isinstance(err, AuthenticationFailed):  # LiteLLM words an unknown key as a 400
        return None
    if isinstance(err, AuthenticationFailed) or status == 401:
        return (
            f"the API rejected OPENAI_API_KEY ({status}: {err.message}): put a valid key in .env "
            "(for a gateway, a token it issued, and check OPENAI_BASE_URL points at it)"
        )
    if isinstance(err, InsufficientQuota):
        return f"the key works but its account has no credit left ({status}: {err.message}): add credit or quota"
    if isinstance(err, PermissionDenied):
        return f"the key may not use this API ({status}: {err.message}): check the key's permissions or project"
    return None


def _model_missing(status: int, body: Any) -> bool:
    if not _is_error_object(body):
        return False
    err = body["error"]
    code = str(err.get("code") or "")
    message = str(err.get("message") or "").lower()
    return code == "model_not_found" or "无可用渠道" in message or ("model" in message and status in (400, 404, 503))


def _refuses_model(status: int, answer: Any) -> bool:
    param = answer["error"].get("param")
    return param == "model" or (_model_missing(status, answer) and param != "n")


async def check_images_api(settings: Settings, http: aiohttp.ClientSession, report: Report) -> None:
    seen = await _check_images_api(settings, http, report)
    if seen is None:
        return
    url, key = settings.openai_base_url.rstrip("/"), settings.openai_api_key
    if seen.gateway is None:  # the model routes did not tell: LiteLLM's own free route does
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError, ValueError):
            seen.gateway = await detect_gateway(http, url, key)
    if seen.gateway == LITELLM:
        report.note(NAME, f"answered by {LITELLM}; previews are off through this gateway: {LITELLM_NO_STREAM}")


async def _check_images_api(settings: Settings, http: aiohttp.ClientSession, report: Report) -> _Seen | None:
    if settings.demo_mode:
        report.ok(NAME, "demo mode: images come from the built-in fake image service (no key to check)")
        return None
    url, key, model = settings.openai_base_url.rstrip("/"), settings.openai_api_key, settings.image_model
    base = safe_url(url)
    seen = _Seen()
    try:
        status, body, headers = await _request(http, "GET", f"{url}/models/{quote(model, safe='')}", key, seen)
        problem = _key_problem(status, body, headers, key)
        if problem:
            report.fail(NAME, problem + seen.suffix())
            return None
        if status == 200 and isinstance(body, dict) and body.get("id"):
            report.ok(NAME, f"key accepted; model {model} is available at {base}{seen.suffix()}")
            return seen
        offered: list[str] | None = None
        s2, listing, h2 = await _request(http, "GET", f"{url}/models", key, seen)
        problem = _key_problem(s2, listing, h2, key)
        if problem:
            report.fail(NAME, problem + seen.suffix())
            return None
        if s2 == 200 and isinstance(listing, dict) and isinstance(listing.get("data"), list):
            offered = [str(m.get("id")) for m in listing["data"] if isinstance(m, dict)]
        if offered is not None and model in offered:
            report.ok(NAME, f"key accepted; model {model} is listed at {base}/models{seen.suffix()}")
            return seen
        if offered is not None or _model_missing(status, body):
            images = [m for m in offered or [] if "image" in m] or (offered or [])[:10]
            choice = f" it offers {', '.join(images)};" if images else ""
            report.fail(
                NAME,
                f"key accepted, but IMAGE_MODEL {model} is not available there:{choice} set IMAGE_MODEL to a model "
                f"it serves (for a gateway, enable the model for this token's group/channel){seen.suffix()}",
            )
            return None
        await _probe_by_validation(http, url, key, model, seen, report)
        return seen
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:  # ValueError: credentials in the URL
        report.fail(NAME, f"cannot reach the Images API at {base}: {type(exc).__name__}; check OPENAI_BASE_URL")
        return None


async def _probe_by_validation(
    http: aiohttp.ClientSession, url: str, key: str, model: str, seen: _Seen, report: Report
) -> None:
    """No models routes: send a generation request that validation must refuse (``n: 0``)."""
    base = safe_url(url)
    body = {"model": model, "prompt": "imagebot doctor: validation probe", "n": 0}
    status, answer, headers = await _request(http, "POST", f"{url}/images/generations", key, seen, body)
    problem = _key_problem(status, answer, headers, key)
    if problem:
        report.fail(NAME, problem + seen.suffix())
    elif _is_error_object(answer) and _refuses_model(status, answer):
        message = answer["error"].get("message")
        report.fail(NAME, f"IMAGE_MODEL {model} is refused ({status}: {message}): set a model it serves{seen.suffix()}")
    elif status in (400, 422):
        report.ok(
            NAME,
            f"key accepted (no models list at {base}; a request only validation answers was refused as expected); "
            f"model {model} not verified{seen.suffix()}",
        )
    elif status == 404:
        report.fail(NAME, f"{base}/images/generations does not exist (404): check OPENAI_BASE_URL (often ends in /v1)")
    else:
        report.fail(NAME, f"unexpected answer {status} from {base}/images/generations{seen.suffix()}; try again later")


# ---- a key a server brings (/apikey set): the same check, worded for the server's managers -----------------
class _Capture(Report):
    """A report that keeps the last failure's text instead of printing for an operator."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.last_failure = ""

    def fail(self, name: str, text: str) -> None:
        super().fail(name, text)
        self.last_failure = text


async def check_server_key(http: aiohttp.ClientSession, settings: Settings, base_url: str, key: str) -> str | None:
    """Check a server's key against its API as the doctor checks the operator's (no image is made).

    None when the key is accepted; else why not: "rejected", "credit", "model" or "unreachable". The
    service's own answer is never returned (it goes nowhere: a stranger's API chose it).
    """
    trial = dataclasses.replace(settings, openai_base_url=base_url, openai_api_key=key, demo_mode=False)
    report = _Capture()
    await check_images_api(trial, http, report)
    if not report.failed:
        return None
    text = report.last_failure
    if "rejected" in text or "may not use this API" in text:
        return "rejected"
    if "no credit" in text:
        return "credit"
    if "is not available" in text or "is refused" in text:
        return "model"
    return "unreachable"


async def public_base_url(url: str, *, allow_private: bool) -> bool:
    """Whether a base URL a server gave may be called: https, and a host on the public internet (its
    addresses are resolved now; ``ALLOW_PRIVATE_BASE_URLS`` lifts both rules for a gateway on your network)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return False
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        return False
    if allow_private:
        return True
    if parts.scheme != "https":
        return False
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return bool(addresses) and all(a.is_global for a in addresses)
