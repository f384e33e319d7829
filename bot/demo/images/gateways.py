"""Gateway personalities of the fake Images API: new-api, one-api and the LiteLLM proxy.

Each reproduces what the gateway's own source does (read there; docs/setup/gateways.md sums it up): how it
answers a stream request, which fields it drops or refuses, its error bodies and request-id header. The fake
(``bot/demo/images/server.py``) asks the personality before answering; ``None`` means "answer as OpenAI would".
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["GATEWAYS", "Gateway", "gateway_error"]

GATEWAYS = ("openai", "new-api", "one-api", "litellm")

# LiteLLM 1.110.2 as measured (docs/setup/gateways.md): it forwards every field, stream ones included.
LITELLM_VERSION = "1.110.2"
LITELLM_ROUTER_ATTEMPTS = 3  # a failed call is tried twice more by its router (each one billed upstream)
LITELLM_COOLDOWN = 5.0


def _litellm_suffix(model: str) -> str:
    return f"\n\nLiteLLM: model group '{model}' failed with the error above. No fallback was attempted."


def _body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def gateway_error(gateway: str, kind: str, model: str = "gpt-image-2") -> tuple[int, dict[str, Any]]:
    """(status, body) of a gateway-specific failure ``kind``, before the personality's own decoration."""
    errors = {"new-api": _new_api_error, "litellm": _litellm_error}.get(gateway)
    found = errors(kind, model) if errors is not None else None
    if found is None:
        raise ValueError(f"no {kind!r} failure for gateway {gateway!r}")
    return found


def _new_api_error(kind: str, model: str) -> tuple[int, dict[str, Any]] | None:
    if kind == "quota":
        return 403, _body("用户额度不足, 剩余额度: ＄0.000000", "new_api_error", "insufficient_user_quota")
    if kind == "token_quota":
        return 403, _body("预扣费额度失败", "new_api_error", "pre_consume_token_quota_failed")
    if kind == "quota_legacy":  # older versions: 401, a Chinese text and no code
        return 401, _body("该令牌额度已用尽 TokenStatusExhausted[sk-abc***xyz]", "new_api_error", None)
    if kind == "model_not_found":
        return 503, _body(f"当前分组 default 下对于模型 {model} 无可用渠道", "new_api_error", "model_not_found")
    if kind == "sensitive_words":
        return 400, _body("sensitive words detected", "new_api_error", "sensitive_words_detected")
    if kind == "sensitive_words_legacy":
        return 500, _body("sensitive words detected", "new_api_error", "sensitive_words_detected")
    return None


def _litellm_error(kind: str, model: str) -> tuple[int, dict[str, Any]] | None:
    if kind == "out_of_credit":
        return 429, _body(
            "litellm.RateLimitError: RateLimitError: OpenAIException - You exceeded your current quota, please "
            "check your plan and billing details." + _litellm_suffix(model),
            "throttling_error",
            None,
        )
    if kind == "wrong_key":  # a key the proxy does not know, without a database
        return 400, _body("No connected db.", "no_db_connection", None)
    if kind == "unknown_model":
        message = (
            f"400: {{'error': '/image/generations: Invalid model name passed in model={model}. Call "
            "`/v1/models` to view available models for your key.'}"
        )
        return 400, _body(message, "invalid_request_error", None)
    if kind == "moderation":
        return 400, _body(
            "litellm.BadRequestError: OpenAIException - Your request was rejected by the safety system."
            + _litellm_suffix(model),
            "image_generation_user_error",
            None,
        )
    if kind == "bad_request":
        inner = json.dumps(_body("Invalid value: 'ultra'. Supported values are: 'low', 'medium'.", "x", None))
        return 400, _body(f"BadRequestError: AzureException BadRequestError - {inner}", "invalid_request_error", None)
    return None


class Gateway:
    """One personality. ``name`` is one of ``GATEWAYS``; ``json_channel`` (new-api) makes the upstream
    channel answer JSON, ``url_items`` makes items carry ``url`` instead of ``b64_json``, ``data_as_object``
    sends ``data`` as one object instead of a list."""

    def __init__(self, name: str = "openai") -> None:
        if name not in GATEWAYS:
            raise ValueError(f"unknown gateway {name!r}: one of {', '.join(GATEWAYS)}")
        self.name = name
        self.json_channel = False
        self.url_items = False
        self.data_as_object = False
        self.cooldown_seconds = LITELLM_COOLDOWN  # LiteLLM: how long a failure cools the model group down
        self.cool_until = 0.0  # (event loop time)

    @property
    def is_openai(self) -> bool:
        return self.name == "openai"

    @property
    def request_id_header(self) -> str:
        return {"new-api": "X-Oneapi-Request-Id", "one-api": "X-Oneapi-Request-Id", "litellm": "x-litellm-call-id"}.get(
            self.name, "x-request-id"
        )

    def headers(self, request_id: str) -> dict[str, str]:
        if self.name == "litellm":
            return {"x-litellm-call-id": request_id, "x-litellm-version": LITELLM_VERSION}
        return {self.request_id_header: request_id}

    def cooling(self, now: float, model: str) -> tuple[int, dict[str, Any]] | None:
        """LiteLLM's answer while its model group cools down after a failure (never sent upstream)."""
        if self.name != "litellm" or now >= self.cool_until:
            return None
        message = (
            f"No deployments available for selected model, Try again in {self.cooldown_seconds:g} seconds. All "
            f"deployments for selected model are in cooldown. Passed model={model}. pre-call-checks=False"
        )
        return 429, _body(message, "all_deployments_in_cooldown", "429")

    def failed(self, now: float, status: int) -> None:
        """An upstream 401 or a failed call puts LiteLLM's model group in a cooldown."""
        if self.name == "litellm" and (status == 401 or status >= 500):
            self.cool_until = now + self.cooldown_seconds

    def relay_data(self, data: list[dict[str, Any]]) -> Any:
        """The ``data`` the client gets when the upstream sends ``data_as_object``: new-api passes the object on,
        LiteLLM reads it as a list and passes on an empty one (the upstream billed an image the client never
        sees)."""
        if not self.data_as_object or len(data) != 1:
            return data
        return [] if self.name == "litellm" else data[0]

    @property
    def pings(self) -> bool:
        """new-api interleaves ``: PING`` comment lines and re-sends ``data: [DONE]``."""
        return self.name == "new-api"

    def decorate(self, status: int, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        """An error body as this gateway words it (new-api/one-api: "(request id: …)" in the message;
        LiteLLM: ``code`` = the status as a string, ``litellm.<Kind>Error:`` before the message)."""
        if self.is_openai or not isinstance(body.get("error"), dict):
            return body
        body = copy.deepcopy(body)
        err = body["error"]
        message = str(err.get("message") or "")
        if self.name in ("new-api", "one-api"):
            err["message"] = f"{message} (request id: {request_id})"
            err["param"] = err.get("param") or ""
        else:
            kind = {400: "BadRequestError", 401: "AuthenticationError", 429: "RateLimitError"}.get(status, "APIError")
            if not message.startswith(("litellm.", "No ", "400: ")):
                message = f"litellm.{kind}: {kind}: OpenAIException - {message}"
            err["message"] = message
            err["code"] = str(status)
        return body

    def refuse(self, path: str, params: dict[str, Any], stream: bool) -> tuple[int, dict[str, Any], int] | None:
        """(status, body, billed) when the gateway fails this request itself, else None. ``billed``: how many
        times the upstream had answered (and charged) it when the gateway failed."""
        edit = path.endswith("/edits")
        if self.name == "one-api":
            if edit:
                return 501, _body("API not implemented", "one_api_error", "api_not_implemented"), 0
            if stream:  # the upstream's SSE answer is read as JSON, after it billed a 200
                return (
                    500,
                    _body("unmarshal_response_body_failed", "one_api_error", "unmarshal_response_body_failed"),
                    1,
                )
        if self.name == "litellm" and stream:
            model = str(params.get("model"))
            if edit:  # the upstream's SSE comes back whole as the message of a 500 (base64 and all)
                frame = "iVBORw0KGgo" + "A" * 40000
                event = "image_edit.partial_image"
                sse = f'event: {event}\ndata: {{"type": "{event}", "b64_json": "{frame}"}}'
                message = f"litellm.APIError: APIError: OpenAIException - {sse}"
                return 500, _body(message, "internal_server_error", "500"), 1
            message = (
                "litellm.APIConnectionError: APIConnectionError: OpenAIException - 'str' object has no attribute "
                "'model_dump'" + _litellm_suffix(model)
            )
            return 500, _body(message, "internal_server_error", "500"), LITELLM_ROUTER_ATTEMPTS
        return None

    def forward(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters the upstream receives: new-api drops unknown fields of JSON generations."""
        params = dict(params)
        if self.name == "new-api" and not path.endswith("/edits"):
            params.pop("safety_identifier", None)
        return params

    def json_as_stream(self, stream: bool) -> bool:
        """new-api turns a JSON answer of its upstream channel into ``completed`` events."""
        return stream and self.name == "new-api" and self.json_channel
