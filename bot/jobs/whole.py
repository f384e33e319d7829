"""A job's completed image, checked whole before anyone sees it (and an SVG cleaned) off the event loop."""

from __future__ import annotations

import dataclasses

from bot.images_api.errors import BrokenImage, ImageTooLarge, UnsafeImage
from bot.images_api.limits import final_image_limits
from bot.images_api.models import ModelInfo
from bot.images_api.types import CompletedImage
from bot.imaging.svg import UnsafeSvg, sanitize_svg
from bot.imaging.verify import DamagedImage, OversizedImage, verify_image

__all__ = ["whole_image"]


async def whole_image(
    image: CompletedImage, requested: str | None = None, model: ModelInfo | None = None
) -> CompletedImage:
    """The completed image if its bytes are a whole image (checked in a thread), labelled with the format
    they really are; else ``BrokenImage``, which makes the slot fail and, if no slot succeeds, the job
    refunded. The check is cheap (under 1.1 ms for a 1536x1024 PNG, measured: see ``verify_image_sync``).
    With ``model``, dimensions beyond what it returns are refused from the header (``ImageTooLarge``)."""
    try:
        fmt = await verify_image(image.data, requested, final_image_limits(model) if model else None)
        if fmt == "svg":  # untrusted markup: only its cleaned copy goes any further
            image = dataclasses.replace(image, data=await sanitize_svg(image.data))
    except UnsafeSvg as exc:
        raise UnsafeImage(f"the completed SVG is refused: {exc}", request_id=image.request_id) from None
    except OversizedImage as exc:
        raise ImageTooLarge(f"the completed image is too large: {exc}", request_id=image.request_id) from None
    except DamagedImage as exc:
        raise BrokenImage(f"the completed image is broken: {exc}", request_id=image.request_id) from None
    return image if fmt == image.output_format else dataclasses.replace(image, output_format=fmt)
