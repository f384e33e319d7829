"""The one place that turns domain errors into words for users. No Discord imports.

Users never see raw exception text or a status code alone; operators get the details in the log.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.images.errors import (
    AuthenticationFailed,
    BrokenImage,
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
from bot.inputs import InputRejected
from bot.jobs import ShuttingDown, TooManyJobs
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
    if isinstance(exc, BrokenImage):
        return "The image service sent back a broken image file. Please try again; this one isn't charged."
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


_FIELD = re.compile(r"[a-z_]{1,40}(\[\d{0,2}\])?")


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
    if isinstance(exc, InputRejected):
        return exc.message
    if isinstance(exc, ShuttingDown):
        return RESTARTING
    if isinstance(exc, TooManyJobs):
        return f"You already have {exc.limit} images in progress. Please wait for one to finish."
    if isinstance(exc, ImagesAPIError):
        return api_error(exc)
    return None


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_clip = clip


# --- the error path's own words (cogs/_errors.py) -----------------------------------------------------

GENERIC = "Something went wrong on the bot's side. It has been logged; please try again."
NOT_HERE = "You can't use this command here."
SERVERS_ONLY = "This command works in servers only."
FEATURE_UNAVAILABLE = "That isn't available right now. Please try again in a moment."


def invalid_value(value: str) -> str:
    shown = clip(value.replace("`", "'"), 40)
    return f"That value for `{shown}` isn't valid."


PERMISSION_NAMES = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "attach_files": "Attach Files",
    "embed_links": "Embed Links",
    "read_message_history": "Read Message History",
}


def bot_missing_permissions(names: list[str]) -> str:
    shown = ", ".join(f"**{PERMISSION_NAMES.get(n, n)}**" for n in names)
    return (
        f"I can't post images in this channel: I'm missing the {shown} permission{'s' if len(names) > 1 else ''}. "
        "Please ask a moderator to allow it for me here. Nothing was charged."
    )


def not_moderator(manager_role_id: int | None, *, admins_only: bool = False) -> str:
    if admins_only:
        return "Only members with the Manage Server permission can change this. Nothing was changed."
    extra = f" or the <@&{manager_role_id}> role" if manager_role_id else ""
    return f"Only moderators can use this command: it needs the Manage Server permission{extra}. Nothing was changed."


# --- jobs and their results (cogs/_delivery.py, cogs/results.py) -----------------------------------

EMPTY_PROMPT = "Please describe the image you want in `prompt`."
NO_IMAGE = "No image came back. Please try again."
JOB_UNKNOWN = "That job is no longer known to the bot."
JOB_NOT_HERE = "That button doesn't belong to a job of this channel, so it does nothing here."
CANCEL_NOT_YOURS = "Only the person who asked for this image, or a moderator, can cancel it."
JOB_ALREADY_ENDED = "That job has already ended (or its result is being posted), so there is nothing to cancel."
RESTARTING = "The bot is restarting right now. Please try again in a minute; nothing was charged."
DELETE_NOT_YOURS = "Only the person who asked for this image, or a moderator with Manage Messages, can delete it."


def stopped(reason: str, by: str | None, *, kept: int = 0, total: int = 1) -> str:
    """Why a job ended early. ``by`` is a display name (shown as text: nobody is pinged)."""
    if reason == "shutdown":
        return "The bot restarted before this image was finished. This didn't count against your quota."
    who = f" by {by}" if by else ""
    if kept:
        return f"🛑 Cancelled{who} · {kept} of {total} images finished and kept"
    return f"🛑 Cancelled{who}. Nothing was charged."


def undelivered(status: int | None, code: int | None) -> str:
    """The result was made but could not be posted; the user is not charged for it."""
    if status == 403 and code == 50013:
        reason = "the bot isn't allowed to post it here (it needs the Attach Files and Send Messages permissions)"
    elif status == 413 or code == 40005:
        reason = "Discord refused the file as too large"
    elif status is not None and status >= 500:
        reason = "Discord had a problem accepting it"
    else:
        reason = "Discord refused it"
    return f"The image was made, but couldn't be delivered: {reason}. This didn't count against your quota."


# --- editing (cogs/edit/) -------------------------------------------------------------------------------

EDIT_EMPTY_PROMPT = "Please say what to change in `prompt`."
EDIT_NO_INSTRUCTION = "Please say what to change."
MESSAGE_GONE = "I can't see that message any more."
NO_IMAGE_TO_EDIT = "That message has no image to edit."
SERVERS_ONLY_EDIT = "I edit images in servers only."
REPLIED_MESSAGE_GONE = "I can't find the message you replied to; it may have been deleted."
NO_IMAGE_SEEN = (
    "That message has no image I can see. Reply to a message with an image, or use "
    "right-click → **Apps** → **Edit image** on it."
)
REPLY_NO_INSTRUCTION = "What should I change? Reply again with an instruction, e.g. *make it night time*."
PREPARING = "🎨 Getting the image ready…"
HOW_TO_EDIT = (
    "To edit an image, reply to the message that has it, mention me and say what to change "
    "(for example *make it night time*), or right-click the message → **Apps** → **Edit image**. "
    "`/edit` takes an uploaded image; `/imagine` makes a new one."
)
REROLL_SOURCE_GONE = "The image this edit started from is gone, so it can't be rerolled."


def input_dimensions_too_large(what: str, width: int, height: int) -> str:
    return f"{what} is too large ({width}×{height})."


def input_not_on_discord(what: str) -> str:
    return f"{what} isn't hosted on Discord, so the bot won't fetch it."


def input_download_failed(what: str) -> str:
    return f"{what} couldn't be downloaded from Discord (was it deleted?)."


def input_file_too_large(what: str, max_bytes: int) -> str:
    return f"{what} is larger than the {max_bytes // 2**20} MB limit."
