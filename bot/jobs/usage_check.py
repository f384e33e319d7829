"""Token counts from the image service are checked before they are charged.

A gateway may send anything as ``usage``: negative counts (the ledger refuses them, and the job would stay
reserved), or absurd ones that would spend a month's budget on one image. A count is plausible when it is
not negative and at most ``USAGE_FACTOR`` times the estimate for what was asked (output at the model's
highest quality for that size); an implausible ``usage`` is logged and replaced by the estimate, which is
what a job without ``usage`` is charged too.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from bot.images_api.models import ModelInfo
from bot.images_api.types import CompletedImage, Usage

if TYPE_CHECKING:
    from bot.jobs.service import JobSpec

__all__ = ["USAGE_FACTOR", "plausible"]

log = logging.getLogger(__name__)

USAGE_FACTOR = 4
INPUT_SLACK = 1024  # tokens: a system prompt or a rewritten prompt may add some text


def _bounds(model: ModelInfo, spec: JobSpec, size: str) -> tuple[int, int]:
    text, image = model.estimate_input_tokens(len(spec.prompt), len(spec.images) + (spec.mask is not None))
    most_out = max(model.estimate_output_tokens(size, q) for q in (*model.qualities, "high"))
    return USAGE_FACTOR * (text + image) + INPUT_SLACK, USAGE_FACTOR * most_out


def plausible(image: CompletedImage, spec: JobSpec, model: ModelInfo, job_id: int | None = None) -> CompletedImage:
    """``image`` with its ``usage`` kept when plausible, else replaced by the estimate (and logged)."""
    usage = image.usage
    if usage is None:
        return image
    o = spec.options
    size = image.size or o.size or "auto"
    max_in, max_out = _bounds(model, spec, size)
    counts = (usage.input_tokens, usage.output_tokens, usage.total_tokens, usage.input_text_tokens)
    if (
        min(*counts, usage.input_image_tokens) >= 0
        and usage.input_tokens <= max_in
        and usage.input_text_tokens + usage.input_image_tokens <= max_in
        and usage.output_tokens <= max_out
        and usage.total_tokens <= max_in + max_out
    ):
        return image
    text, images = model.estimate_input_tokens(len(spec.prompt), len(spec.images))
    out = model.estimate_output_tokens(size, image.quality or o.quality or "auto")
    log.warning(
        "job %s: implausible usage from the image service (input %s, output %s, total %s tokens; at most %d "
        "and %d expected, request_id=%s): charging the estimate (%d input, %d output tokens)",
        job_id,
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        max_in,
        max_out,
        image.request_id,
        text + images,
        out,
    )
    estimate = Usage(
        input_tokens=text + images,
        output_tokens=out,
        total_tokens=text + images + out,
        input_text_tokens=text,
        input_image_tokens=images,
        raw={"estimated": True},
    )
    return dataclasses.replace(image, usage=estimate)
