"""The one place that turns domain errors into words for users. No Discord imports.

Users never see raw exception text or a status code alone; operators get the details in the log.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.images.errors import (
    AuthenticationFailed,
    ContentBlocked,
    DownloadFailed,
    EditsNotSupported,
    ImagesAPIError,
    InsufficientQuota,
    InvalidRequest,
    MalformedResponse,
    ModelUnavailable,
    PermissionDenied,
    RateLimited,
    ServerError,
    StreamError,
    VerificationRequired,
)
from bot.jobs import TooManyJobs
from bot.options import OptionError
from bot.quota import QuotaExceeded


def relative_time(when: datetime) -> str:
    """A Discord timestamp that every client renders as 'in 5 hours' in the reader's own time zone."""
    return f"<t:{int(when.timestamp())}:R>"


def quota_exceeded(exc: QuotaExceeded) -> str:
    if exc.scope == "blocked":
        return "Image generation is turned off for you on this server."
    if exc.scope == "budget":
        return (
            f"This server has used its monthly image budget (${exc.limit:.2f}). "
            f"It resets {relative_time(exc.resets_at)}."
        )
    period = "today" if exc.scope == "daily" else "this month"
    noun = "image" if exc.limit == 1 else "images"
    left = max(0, int(exc.limit) - int(exc.used))
    asked = int(exc.requested or 0)
    detail = f"{exc.used} used"
    if asked > 1 and left > 0:
        detail += f"; you asked for {asked} but only {left} left"
    return (
        f"You've reached your limit of {exc.limit} {noun} {period} ({detail}). "
        f"It resets {relative_time(exc.resets_at)}. Use `/quota me` to see your usage."
    )


def api_error(exc: BaseException) -> str:
    """What a user reads when the image service fails them. Never charged."""
    if isinstance(exc, ContentBlocked):
        return (
            "The image service declined this request under its safety rules. "
            "Try rewording the prompt. This didn't count against your quota."
        )
    if isinstance(exc, InsufficientQuota):  # before the 401/403 classes: gateways answer quota with those
        return "The image service the bot uses is out of credit. Please tell the server owner."
    if isinstance(exc, ModelUnavailable):
        return (
            "The image service doesn't offer the model this bot is set up to use: a configuration problem "
            "(the `IMAGE_MODEL` setting). Please tell the server owner."
        )
    if isinstance(exc, EditsNotSupported):
        return "This image service does not support editing. Please tell the server owner."
    if isinstance(exc, MalformedResponse):
        return "The image service sent an answer the bot couldn't read (its fault, not yours). Please try again."
    if isinstance(exc, DownloadFailed):
        return "The image service made the image, but the bot couldn't download it. Please try again."
    if isinstance(exc, AuthenticationFailed):
        return "The bot's OpenAI API key was rejected. Please tell the server owner."
    if isinstance(exc, VerificationRequired):
        return "The bot's OpenAI organization must be verified to use this model. Please tell the server owner."
    if isinstance(exc, PermissionDenied):
        return "The bot's OpenAI account isn't allowed to use this model. Please tell the server owner."
    if isinstance(exc, RateLimited):
        return "The image service is busy right now (rate limit). Please try again in a minute."
    if isinstance(exc, ServerError):
        return "The image service had a problem. Please try again in a moment."
    if isinstance(exc, InvalidRequest):
        # The service's own wording (a gateway's especially) stays in the log: it is not written for users.
        param = f" (`{exc.param}`)" if exc.param and _FIELD.fullmatch(exc.param) else ""
        return f"The image service refused these settings{param}. Try other options, or a different prompt."
    if isinstance(exc, StreamError):
        return "The connection to the image service broke off. Please try again."
    if isinstance(exc, ImagesAPIError):
        return "The image service couldn't make this image. Please try again."
    return "Something went wrong making this image. Please try again."


_FIELD = re.compile(r"[a-z_]{1,40}(\[\d{0,2}\])?")


def user_error(exc: BaseException) -> str | None:
    """A message for errors users cause or can fix; None for bugs (logged, generic reply)."""
    if isinstance(exc, QuotaExceeded):
        return quota_exceeded(exc)
    if isinstance(exc, OptionError):
        return str(exc)
    if isinstance(exc, TooManyJobs):
        return f"You already have {exc.limit} images in progress. Please wait for one to finish."
    if isinstance(exc, ImagesAPIError):
        return api_error(exc)
    return None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(text: str, limit: int) -> str:
    return _clip(text, limit)
