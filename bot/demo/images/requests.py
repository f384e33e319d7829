"""What the fake Images API records of each request, its faults, and how it reads and validates a request.

``RequestReader`` is the part of ``FakeImagesAPI`` (``bot/fakeapi/server.py``) that parses a JSON or multipart
body, records it, and checks it against the committed subset of OpenAI's spec and the model's rules.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from bot.images_api.models import get_model

from . import draw

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("openai_schema.json")
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
INT_FIELDS = frozenset({"n", "partial_images", "output_compression", "frame_count", "frame_duration_ms"})
BOOL_FIELDS = frozenset({"stream"})
# Accepted although not in the (older) spec subset.
EXTRA_FIELDS = frozenset({"safety_identifier"})
MAX_BODY = 16 * 50 * 1024 * 1024 + 10 * 1024 * 1024

VERIFY_STREAM_MESSAGE = (
    "Your organization must be verified to stream this model. Please go to: "
    "https://platform.openai.com/settings/organization/general and click on Verify Organization."
)
MODERATION_MESSAGE = (
    "Your request was rejected by the safety system. If you believe this is an error, contact us at "
    "help.openai.com and include the request ID."
)


@dataclass(slots=True)
class RecordedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    form: dict[str, str] = field(default_factory=dict)
    files: list[RecordedFile] = field(default_factory=list)


@dataclass(slots=True)
class SentEvent:
    request: int  # 1-based request number
    prompt: str
    type: str  # e.g. image_generation.partial_image, "response" for non-streaming, "error"
    partial_index: int | None
    time: float  # time.monotonic() when written
    started: float = 0.0  # time.monotonic() when the write began (before the client could read it)


@dataclass(slots=True)
class Fault:
    """What to do to the next request(s).

    kind: ``error`` (answer ``status`` + ``body``), ``mid_stream_error`` (send ``event: error`` after
    ``after_partials`` partial frames), ``drop`` (close the socket abruptly there), ``hang`` (stall there),
    ``truncate`` (send the final image(s) cut to their first ``keep_bytes`` bytes, the answer otherwise normal).
    ``half_event`` (send half of the next event's JSON, then end the stream).
    """

    kind: str
    status: int = 500
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    after_partials: int = 0
    times: int = 1
    keep_bytes: int = 0
    replacement: bytes = b""  # ``replace``: the final image's bytes


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status = message, param, code, status


def _load_validators() -> dict[str, Any] | None:
    try:
        import jsonschema  # optional: the demo install may not have it
    except ImportError:
        return None
    doc = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validators = {}
    for name in ("CreateImageRequest", "CreateImageEditRequest"):
        schema = {**doc, "$ref": f"#/components/schemas/{name}"}
        validators[name] = jsonschema.Draft202012Validator(schema)
    validators["_properties"] = {
        name: set(doc["components"]["schemas"][name]["properties"])
        for name in ("CreateImageRequest", "CreateImageEditRequest")
    }
    return validators


def _error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class RequestReader:
    """Reading requests (a mixin of ``FakeImagesAPI``)."""

    requests: list[RecordedRequest]
    validation_errors: list[str]
    _validators: dict[str, Any] | None

    async def _record(self, request: web.Request, edit: bool) -> RecordedRequest:
        rec = RecordedRequest(request.method, request.path, dict(request.headers))
        self.requests.append(rec)
        if not edit:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                raise _BadRequest("We could not parse the JSON body of your request.") from None
            if not isinstance(body, dict):
                raise _BadRequest("The request body must be a JSON object.")
            rec.json = body
            return rec
        if not request.content_type.startswith("multipart/"):
            raise _BadRequest("Invalid Content-Type header, expected multipart/form-data.")
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):  # nested multipart: not used by OpenAI
                continue
            if part.filename is not None:
                data = await part.read(decode=False)
                ctype = part.headers.get("Content-Type")
                rec.files.append(RecordedFile(part.name or "", part.filename, ctype, bytes(data)))
            else:
                rec.form[part.name or ""] = await part.text()
        return rec

    # ---- validation --------------------------------------------------------------------------
    def _validate(self, rec: RecordedRequest, edit: bool) -> tuple[dict[str, Any], list[RecordedFile], Any]:
        schema_name = "CreateImageEditRequest" if edit else "CreateImageRequest"
        images: list[RecordedFile] = []
        mask: RecordedFile | None = None
        markup: RecordedFile | None = None
        if edit:
            params: dict[str, Any] = {}
            for key, value in rec.form.items():
                params[key] = _convert_form_value(key, value)
            for f in rec.files:
                if f.field in ("image", "image[]") or (f.field.startswith("image[") and f.field.endswith("]")):
                    images.append(f)
                elif f.field == "mask":
                    mask = f
                elif f.field == "markup":
                    markup = f
                else:
                    raise _BadRequest(f"Unknown parameter: '{f.field}'.", f.field, "unknown_parameter")
            if images:
                single = len(images) == 1 and images[0].field == "image"
                params["image"] = "<binary>" if single else ["<binary>"] * len(images)
            if mask is not None:
                params["mask"] = "<binary>"
            if markup is not None:
                params["markup"] = "<binary>"
        else:
            params = dict(rec.json or {})

        if self._validators is not None:
            known = self._validators["_properties"][schema_name] | EXTRA_FIELDS
            for key in params:
                if key not in known:
                    raise _BadRequest(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
            errors = sorted(self._validators[schema_name].iter_errors(params), key=lambda e: list(e.path))
            if errors:
                err = errors[0]
                param = ".".join(str(p) for p in err.path) or None
                if param is None and err.validator == "required":
                    param = str(err.message).split("'")[1] if "'" in err.message else None
                raise _BadRequest(f"Invalid value: {err.message}", param, "invalid_value")
        elif "prompt" not in params:
            raise _BadRequest("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")

        self._check_rules(params, images, mask, edit)
        self._check_newer(params, images, mask, markup)
        return params, images, mask

    def _check_newer(
        self,
        params: dict[str, Any],
        images: list[RecordedFile],
        mask: RecordedFile | None,
        markup: RecordedFile | None,
    ) -> None:
        """The newer parameters, refused as the real API refuses them for a model that lacks them."""
        name = str(params.get("model"))
        model = get_model(name)
        fmt = params.get("output_format") or "png"
        if fmt in ("gif", "svg"):
            if fmt not in model.output_formats:
                raise _BadRequest(
                    f"output_format '{fmt}' is not supported for {name}.", "output_format", "invalid_value"
                )
            if params.get("stream"):
                raise _BadRequest(f"Streaming is not supported with output_format '{fmt}'.", "stream", "invalid_value")
            if params.get("partial_images"):
                raise _BadRequest(
                    f"partial_images is not supported with output_format '{fmt}'.", "partial_images", "invalid_value"
                )
            if mask is not None:
                raise _BadRequest(f"A mask is not supported with output_format '{fmt}'.", "mask", "invalid_value")
            if params.get("output_compression") is not None:
                raise _BadRequest(
                    f"output_compression is not supported with output_format '{fmt}'.",
                    "output_compression",
                    "invalid_value",
                )
            if fmt == "svg" and (params.get("n") or 1) != 1:
                raise _BadRequest("output_format 'svg' requires n=1.", "n", "invalid_value")
        for key in ("frame_count", "frame_duration_ms"):
            if params.get(key) is not None and fmt != "gif":
                raise _BadRequest(f"{key} is only supported with output_format 'gif'.", key, "invalid_value")
        if params.get("complexity") is not None and not model.complexity:
            raise _BadRequest(f"complexity is not supported for {name}.", "complexity", "invalid_value")
        if markup is None:
            return
        if not model.markup:
            raise _BadRequest(f"markup is not supported for {name}.", "markup", "invalid_value")
        if mask is not None:
            raise _BadRequest("markup cannot be used together with mask.", "markup", "invalid_value")
        ctype = (markup.content_type or "").split(";")[0].strip().lower()
        if ctype != "image/png" or not markup.data.startswith(b"\x89PNG"):
            raise _BadRequest("The markup must be a PNG file.", "markup", "invalid_image_format")
        if images and draw.image_size(markup.data) != draw.image_size(images[0].data):
            raise _BadRequest("The markup must have the same dimensions as the image.", "markup", "invalid_value")

    def _check_rules(
        self, params: dict[str, Any], images: list[RecordedFile], mask: RecordedFile | None, edit: bool
    ) -> None:
        model_name = params.get("model")
        if not model_name:
            raise _BadRequest("Missing 'model': the default would be dall-e-2.", "model", "missing_required_parameter")
        model = get_model(str(model_name))
        n = params.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 10:
            raise _BadRequest("n must be between 1 and 10.", "n", "integer_out_of_range")
        partials = params.get("partial_images") or 0
        if not isinstance(partials, int) or not 0 <= partials <= 3:
            raise _BadRequest("partial_images must be between 0 and 3.", "partial_images", "integer_out_of_range")
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 32000:
            raise _BadRequest("prompt must be 1 to 32000 characters.", "prompt", "invalid_value")
        fmt = params.get("output_format") or "png"
        if params.get("background") == "transparent":
            if fmt not in ("png", "webp"):
                raise _BadRequest("Transparent background requires png or webp output.", "background", "invalid_value")
            if not model.supports_transparent and model.known:
                raise _BadRequest(f"{model.name} does not support transparency.", "background", "invalid_value")
        quality = params.get("quality")
        if quality is not None and quality not in model.qualities:
            raise _BadRequest(f"Invalid quality {quality!r} for {model_name}.", "quality", "invalid_value")
        size = params.get("size")
        if size is not None:
            try:
                model.resolve_size(str(size), allow_experimental=True)
            except ValueError as exc:
                raise _BadRequest(f"Invalid size: {exc}", "size", "invalid_value") from None
        if not edit:
            return
        if params.get("input_fidelity") is not None and not model.input_fidelity and model.known:
            raise _BadRequest(f"input_fidelity is not supported for {model.name}.", "input_fidelity", "invalid_value")
        if not images:
            raise _BadRequest("Missing required parameter: 'image'.", "image", "missing_required_parameter")
        if len(images) > 16:
            raise _BadRequest("At most 16 images are allowed.", "image", "invalid_value")
        first_size: tuple[int, int] | None = None
        for i, img in enumerate(images):
            ctype = (img.content_type or "").split(";")[0].strip().lower()
            if ctype not in IMAGE_TYPES:
                raise _BadRequest(
                    f"Invalid file 'image[{i}]': unsupported mimetype ('{ctype}'). Supported file formats are "
                    "'image/jpeg', 'image/png', and 'image/webp'.",
                    f"image[{i}]",
                    "unsupported_file_mimetype",
                )
            try:
                dims = draw.image_size(img.data)
            except Exception:
                raise _BadRequest(f"Invalid image file 'image[{i}]'.", f"image[{i}]", "invalid_image_file") from None
            if first_size is None:
                first_size = dims
        if mask is not None:
            ctype = (mask.content_type or "").split(";")[0].strip().lower()
            if ctype != "image/png" or not mask.data.startswith(b"\x89PNG"):
                raise _BadRequest("The mask must be a PNG file.", "mask", "invalid_image_format")
            if draw.image_size(mask.data) != first_size:
                raise _BadRequest("The mask must have the same dimensions as the image.", "mask", "invalid_value")


def _convert_form_value(key: str, value: str) -> Any:
    if key in INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value  # the schema check reports it
    if key in BOOL_FIELDS:
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    return value
