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

# What LiteLLM's OpenAI image-edit transformation does not know: dropped silently (the answer is JSON).
LITELLM_DROPPED_EDIT_FIELDS = ("output_format", "output_compression", "stream", "partial_images", "safety_identifier")
# Known to LiteLLM but refused for the provider unless the proxy sets drop_params.
LITELLM_UNSUPPORTED_EDIT_FIELDS = ("input_fidelity",)


def _body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def gateway_error(gateway: str, kind: str, model: str = "gpt-image-2") -> tuple[int, dict[str, Any]]:
    """(status, body) of a gateway-specific failure ``kind``, before the personality's own decoration."""
    if gateway == "new-api":
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
    if gateway == "litellm":
        if kind == "out_of_credit":
            return 429, _body(
                "OpenAIException - You exceeded your current quota, please check your plan and billing details.",
                "throttling_error",
                None,
            )
        if kind == "bad_request":
            inner = json.dumps(_body("Invalid value: 'ultra'. Supported values are: 'low', 'medium'.", "x", None))
            return 400, _body(
                f"BadRequestError: AzureException BadRequestError - {inner}", "invalid_request_error", None
            )
    raise ValueError(f"no {kind!r} failure for gateway {gateway!r}")


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

    @property
    def is_openai(self) -> bool:
        return self.name == "openai"

    @property
    def request_id_header(self) -> str:
        return {"new-api": "X-Oneapi-Request-Id", "one-api": "X-Oneapi-Request-Id", "litellm": "x-litellm-call-id"}.get(
            self.name, "x-request-id"
        )

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
            err["message"] = message if message.startswith("litellm.") else f"litellm.{kind}: {message}"
            err["code"] = str(status)
        return body

    def refuse(self, path: str, params: dict[str, Any], stream: bool) -> tuple[int, dict[str, Any], bool] | None:
        """(status, body, billed) when the gateway fails this request itself, else None. ``billed``: the
        upstream had already answered (and charged) when the gateway failed."""
        edit = path.endswith("/edits")
        if self.name == "one-api":
            if edit:
                return 501, _body("API not implemented", "one_api_error", "api_not_implemented"), False
            if stream:  # the upstream's SSE answer is read as JSON, after it billed a 200
                return (
                    500,
                    _body("unmarshal_response_body_failed", "one_api_error", "unmarshal_response_body_failed"),
                    True,
                )
        if self.name == "litellm":
            if not edit and ("stream" in params or "partial_images" in params):
                message = "litellm.BadRequestError: OpenAIException - Unknown parameter: 'extra_body'."
                return 400, _body(message, "invalid_request_error", "400", "extra_body"), False
            for name in LITELLM_UNSUPPORTED_EDIT_FIELDS if edit else ():
                if name in params:
                    message = (
                        f"litellm.UnsupportedParamsError: openai does not support parameters: ['{name}'], for "
                        f"model={params.get('model')}. To drop these, set `litellm.drop_params=True`."
                    )
                    return 400, _body(message, "invalid_request_error", "400"), False
        return None

    def forward(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters the upstream receives: new-api drops unknown fields of JSON generations,
        LiteLLM drops the edit fields it does not know."""
        params = dict(params)
        if self.name == "new-api" and not path.endswith("/edits"):
            params.pop("safety_identifier", None)
        if self.name == "litellm" and path.endswith("/edits"):
            for name in LITELLM_DROPPED_EDIT_FIELDS:
                params.pop(name, None)
        return params

    def json_as_stream(self, stream: bool) -> bool:
        """new-api turns a JSON answer of its upstream channel into ``completed`` events."""
        return stream and self.name == "new-api" and self.json_channel
