"""The one place that turns domain errors into words for users. No Discord imports.

Users never see raw exception text or a status code alone; operators get the details in the log.
"""

from __future__ import annotations

from datetime import datetime

from bot.images.errors import (
    AuthenticationFailed,
    ContentBlocked,
    ImagesAPIError,
    InsufficientQuota,
    InvalidRequest,
    PermissionDenied,
    RateLimited,
    ServerError,
    StreamError,
    VerificationRequired,
)
from bot.jobs import TooManyJobs
from bot.options import OptionError
from bot.quota import QuotaExceeded
from bot.rules import PromptRefused, RuleError


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
    if isinstance(exc, AuthenticationFailed):
        return "The bot's OpenAI API key was rejected. Please tell the server owner."
    if isinstance(exc, VerificationRequired):
        return "The bot's OpenAI organization must be verified to use this model. Please tell the server owner."
    if isinstance(exc, PermissionDenied):
        return "The bot's OpenAI account isn't allowed to use this model. Please tell the server owner."
    if isinstance(exc, InsufficientQuota):
        return "The bot's OpenAI account is out of credit. Please tell the server owner."
    if isinstance(exc, RateLimited):
        return "The image service is busy right now (rate limit). Please try again in a minute."
    if isinstance(exc, ServerError):
        return "The image service had a problem. Please try again in a moment."
    if isinstance(exc, InvalidRequest):
        param = f" (`{exc.param}`)" if exc.param else ""
        return f"The image service refused these settings{param}: {_clip(exc.message or 'invalid request', 300)}"
    if isinstance(exc, StreamError):
        return "The connection to the image service broke off. Please try again."
    if isinstance(exc, ImagesAPIError):
        return "The image service couldn't make this image. Please try again."
    return "Something went wrong making this image. Please try again."


PROMPT_REFUSED = (
    "This prompt contains something this server's moderators don't allow, so it wasn't sent. "
    "Nothing was charged. Please rephrase it."
)


def prompt_refused(exc: PromptRefused) -> str:
    """The refusal every member reads: it names no rule text (the audit log tells moderators which rule)."""
    return PROMPT_REFUSED


def rule_error(exc: RuleError) -> str:
    """Why a moderator's rule was not added (the moderator may read the rule's own text, nobody else)."""
    info = exc.info
    if exc.code == "empty":
        return "The rule is empty: give a word, a phrase or a regular expression."
    if exc.code == "too_long":
        return f"The rule is too long: at most {info.get('limit')} characters."
    if exc.code == "invalid_regex":
        return (
            "That isn't a regular expression I can use. The syntax is RE2's: no back-references (`\\1`) and no "
            "look-ahead or look-behind (`(?=…)`, `(?<!…)`); check the brackets and escapes."
        )
    if exc.code == "too_complex":
        return (
            "That regular expression is too complex (over "
            f"{info.get('limit')} RE2 instructions); split it into simpler rules or use smaller repetition counts."
        )
    if exc.code == "too_complex_total":
        return (
            f"The server's regular expressions together may have at most {info.get('limit')} RE2 instructions "
            f"(they have {info.get('used')}); this one would go over. Remove or simplify one first."
        )
    if exc.code == "matches_everything":
        return "That regular expression matches an empty prompt, so it would refuse every prompt."
    if exc.code == "duplicate":
        return f"That rule exists already (rule #{info.get('rule_id')})."
    if exc.code == "too_many":
        return f"This server has the maximum of {info.get('limit')} rules. Remove one first."
    if exc.code == "too_many_regex":
        return f"This server has the maximum of {info.get('limit')} regular-expression rules. Remove one first."
    return "That rule can't be added."


def user_error(exc: BaseException) -> str | None:
    """A message for errors users cause or can fix; None for bugs (logged, generic reply)."""
    if isinstance(exc, PromptRefused):
        return prompt_refused(exc)
    if isinstance(exc, RuleError):
        return rule_error(exc)
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
