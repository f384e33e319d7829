"""Which gateway answers at ``OPENAI_BASE_URL`` (OpenAI, new-api, one-api, a LiteLLM proxy), found for free.

Read from the headers and bodies of ``GET /models`` (no image is generated, nothing is billed). A LiteLLM proxy
marks its image answers with ``x-litellm-*`` headers but not always its model list, so when the list does not
tell, its own free ``GET /model/info`` route (its deployments, ``litellm_params`` per model) decides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

__all__ = ["LITELLM", "LITELLM_NO_STREAM", "detect_gateway", "recognise_gateway"]

LITELLM = "LiteLLM"
# Why the bot never asks a LiteLLM proxy for a stream (measured with LiteLLM 1.110.2, docs/setup/gateways.md).
LITELLM_NO_STREAM = (
    "a LiteLLM proxy forwards stream requests for images upstream (which bills them), then fails reading the "
    "stream and retries it, so every image is requested whole"
)
DETECT_TIMEOUT = 10.0
MAX_BODY = 1024 * 1024  # a model list is small; more is not read


def recognise_gateway(headers: Mapping[str, str], body: Any = None) -> str | None:
    """The gateway that sent a reply, from its headers and error body; None when nothing tells."""
    keys = {k.lower() for k in headers}
    error = body.get("error") if isinstance(body, dict) else None
    etype = error.get("type") if isinstance(error, dict) else None
    if any(k.startswith("x-litellm") for k in keys):
        return LITELLM
    if etype == "new_api_error":
        return "new-api"
    if etype == "one_api_error":
        return "one-api"
    if "x-oneapi-request-id" in keys:
        return "new-api or one-api"
    if "openai-organization" in keys or "openai-processing-ms" in keys:
        return "OpenAI"
    return None


def _is_litellm_model_info(body: Any) -> bool:
    data = body.get("data") if isinstance(body, dict) else None
    return isinstance(data, list) and any(isinstance(m, dict) and "litellm_params" in m for m in data)


async def _get(http: aiohttp.ClientSession, url: str, api_key: str) -> tuple[int, Any, Mapping[str, str]]:
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json", "User-Agent": "imagebot/0.1"}
    timeout = aiohttp.ClientTimeout(total=DETECT_TIMEOUT)
    async with http.get(url, headers=headers, timeout=timeout, allow_redirects=False) as resp:
        raw = await resp.content.read(MAX_BODY)
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        return resp.status, body, resp.headers


async def detect_gateway(http: aiohttp.ClientSession, base_url: str, api_key: str) -> str | None:
    """The gateway at ``base_url`` (``recognise_gateway``'s names), or None when its answers do not tell.
    Raises ``aiohttp.ClientError``, ``TimeoutError`` or ``OSError`` when it does not answer."""
    base = base_url.rstrip("/")
    status, body, headers = await _get(http, f"{base}/models", api_key)
    found = recognise_gateway(headers, body)
    if found is not None:
        return found
    status, body, headers = await _get(http, f"{base}/model/info", api_key)
    if recognise_gateway(headers, body) == LITELLM or (status == 200 and _is_litellm_model_info(body)):
        return LITELLM
    return None
