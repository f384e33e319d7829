"""Words for what fails or is refused: domain errors and the error path's own words. No Discord imports.

Users never see raw exception text or a status code alone; operators get the details in the log.

Every function takes the reader's ``locale`` (a locale code or catalog name, ``bot.messages.i18n.resolve_locale``;
None is English). The constants are msgids (the English text, marked for the extractor): show one with
``text(locale, CONSTANT)``. Domain errors raised elsewhere (``OptionError``, ``InputRejected``,
``RuleError``) carry a code and parameters; they are worded here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.images_api.errors import (
    AuthenticationFailed,
    BrokenImage,
    ContentBlocked,
    DownloadFailed,
    EditsNotSupported,
    GatewayCannotStream,
    GatewayCooldown,
    ImagesAPIError,
    InsufficientQuota,
    InvalidRequest,
    LinkRefused,
    MalformedResponse,
    ModelUnavailable,
    PermissionDenied,
    RateLimited,
    ResponseTooLarge,
    ServerError,
    StreamError,
    UnsafeImage,
    VerificationRequired,
)
from bot.imaging.inputs import InputRejected, megabytes
from bot.jobs.options import OptionError
from bot.jobs.payers import ServerNotCovered
from bot.jobs.service import ShuttingDown, TooManyJobs
from bot.messages import tenancy
from bot.messages.i18n import N_, format_number, format_usd, translate, translate_plural
from bot.ops.permissions import PERMISSION_NAMES
from bot.quota import QuotaExceeded
from bot.quota.tenants import KeysDisabled
from bot.rules import PromptRefused, RuleError


def text(locale: str | None, msgid: str, /, **params: Any) -> str:
    """One of this module's constants (or any marked msgid) in the language of ``locale``."""
    return translate(locale, msgid, **params)


def relative_time(when: datetime) -> str:
    """A Discord timestamp that every client renders as 'in 5 hours' in the reader's own time zone."""
    return f"<t:{int(when.timestamp())}:R>"


def quota_exceeded(exc: QuotaExceeded, locale: str | None = None) -> str:
    if exc.scope == "blocked":
        return translate(locale, "Image generation is turned off for you on this server.")
    when = relative_time(exc.resets_at)
    if exc.scope == "budget":
        return translate(
            locale,
            "This server has used its monthly image budget ({budget}). It resets {when}.",
            budget=format_usd(locale, exc.limit),
            when=when,
        )
    if exc.scope == "bot_budget":  # the operator's cap for every server: no amount shown to members
        return translate(
            locale,
            "This bot has used its image budget for this month, in all its servers. It resets {when}.",
            when=when,
        )
    left = max(0, int(exc.limit) - int(exc.used))
    asked = int(exc.requested or 0)
    used = format_number(locale, int(exc.used))
    if asked > 1 and left > 0:
        detail = translate(
            locale,
            "{used} used; you asked for {asked} but only {left} left",
            used=used,
            asked=format_number(locale, asked),
            left=format_number(locale, left),
        )
    else:
        detail = translate(locale, "{used} used", used=used)
    n = int(exc.limit)
    if exc.scope == "bot_daily":
        if n == 0:
            return translate(locale, "Image generation is turned off for everyone on this bot.")
        return translate_plural(
            locale,
            "You've reached this bot's limit of {n} image a day per person, counted in all the servers it is "
            "in together ({detail}). It resets {when}.",
            "You've reached this bot's limit of {n} images a day per person, counted in all the servers it is "
            "in together ({detail}). It resets {when}.",
            n,
            detail=detail,
            when=when,
        )
    if exc.scope == "daily":
        return translate_plural(
            locale,
            "You've reached your limit of {n} image today ({detail}). It resets {when}. "
            "Use `/quota me` to see your usage.",
            "You've reached your limit of {n} images today ({detail}). It resets {when}. "
            "Use `/quota me` to see your usage.",
            n,
            detail=detail,
            when=when,
        )
    return translate_plural(
        locale,
        "You've reached your limit of {n} image this month ({detail}). It resets {when}. "
        "Use `/quota me` to see your usage.",
        "You've reached your limit of {n} images this month ({detail}). It resets {when}. "
        "Use `/quota me` to see your usage.",
        n,
        detail=detail,
        when=when,
    )


def api_error(exc: BaseException, locale: str | None = None) -> str:
    """What a user reads when the image service fails them. Never charged."""
    if isinstance(exc, ContentBlocked):
        return translate(
            locale,
            "The image service declined this request under its safety rules. "
            "Try rewording the prompt. This didn't count against your quota.",
        )
    if isinstance(exc, InsufficientQuota):  # before the 401/403 classes: gateways answer quota with those
        return translate(locale, "The image service the bot uses is out of credit. Please tell the server owner.")
    if isinstance(exc, ModelUnavailable):
        return translate(
            locale,
            "The image service doesn't offer the model this bot is set up to use: a configuration problem "
            "(the `IMAGE_MODEL` setting). Please tell the server owner.",
        )
    if isinstance(exc, EditsNotSupported):
        return translate(locale, "This image service does not support editing. Please tell the server owner.")
    if isinstance(exc, LinkRefused):
        return translate(
            locale,
            "The image service's answer was refused: it pointed the bot at a link it may not fetch. "
            "This didn't count against your quota. Please tell the server owner.",
        )
    if isinstance(exc, ResponseTooLarge):
        return translate(
            locale,
            "The image service sent an answer far larger than any image, so the bot stopped reading it. "
            "This didn't count against your quota. Please try again.",
        )
    if isinstance(exc, MalformedResponse):
        return translate(
            locale, "The image service sent an answer the bot couldn't read (its fault, not yours). Please try again."
        )
    if isinstance(exc, DownloadFailed):
        return translate(
            locale, "The image service made the image, but the bot couldn't download it. Please try again."
        )
    if isinstance(exc, AuthenticationFailed):
        return translate(locale, "The bot's OpenAI API key was rejected. Please tell the server owner.")
    if isinstance(exc, VerificationRequired):
        return translate(
            locale, "The bot's OpenAI organization must be verified to use this model. Please tell the server owner."
        )
    if isinstance(exc, PermissionDenied):
        return translate(
            locale, "The bot's OpenAI account isn't allowed to use this model. Please tell the server owner."
        )
    if isinstance(exc, GatewayCooldown):
        return translate(
            locale,
            "The image service's gateway paused this model for a few seconds after an error. "
            "Please try again in a moment; this didn't count against your quota.",
        )
    if isinstance(exc, GatewayCannotStream):
        return translate(
            locale,
            "The image service's gateway can't stream images, so live previews are now off for it. "
            "This image wasn't made and didn't count against your quota: please try again.",
        )
    if isinstance(exc, RateLimited):
        return translate(locale, "The image service is busy right now (rate limit). Please try again in a minute.")
    if isinstance(exc, ServerError):
        return translate(locale, "The image service had a problem. Please try again in a moment.")
    if isinstance(exc, InvalidRequest):
        # The service's own wording (a gateway's especially) stays in the log: it is not written for users.
        param = f" (`{exc.param}`)" if exc.param and _FIELD.fullmatch(exc.param) else ""
        return translate(
            locale,
            "The image service refused these settings{param}. Try other options, or a different prompt.",
            param=param,
        )
    if isinstance(exc, UnsafeImage):
        return translate(
            locale,
            "The image service sent back an SVG the bot won't pass on (it could reach outside itself or is far "
            "too large). Please try again; this one isn't charged.",
        )
    if isinstance(exc, BrokenImage):
        return translate(
            locale, "The image service sent back a broken image file. Please try again; this one isn't charged."
        )
    if isinstance(exc, StreamError):
        return translate(locale, "The connection to the image service broke off. Please try again.")
    if isinstance(exc, ImagesAPIError):
        return translate(locale, "The image service couldn't make this image. Please try again.")
    return translate(locale, "Something went wrong making this image. Please try again.")


PROMPT_REFUSED = N_(
    "This prompt contains something this server's moderators don't allow, so it wasn't sent. "
    "Nothing was charged. Please rephrase it."
)


def prompt_refused(exc: PromptRefused, locale: str | None = None) -> str:
    """The refusal every member reads: it names no rule text (the audit log tells moderators which rule)."""
    return translate(locale, PROMPT_REFUSED)


def rule_error(exc: RuleError, locale: str | None = None) -> str:
    """Why a moderator's rule was not added (the moderator may read the rule's own text, nobody else)."""
    info = exc.info
    limit = info.get("limit")  # counts of characters and RE2 instructions: written as digits, like RE2 does
    if exc.code == "empty":
        return translate(locale, "The rule is empty: give a word, a phrase or a regular expression.")
    if exc.code == "too_long":
        return translate(locale, "The rule is too long: at most {limit} characters.", limit=limit)
    if exc.code == "invalid_regex":
        return translate(
            locale,
            "That isn't a regular expression I can use. The syntax is RE2's: no back-references (`\\1`) and no "
            "look-ahead or look-behind (`(?=…)`, `(?<!…)`); check the brackets and escapes.",
        )
    if exc.code == "too_complex":
        return translate(
            locale,
            "That regular expression is too complex (over {limit} RE2 instructions); split it into simpler rules "
            "or use smaller repetition counts.",
            limit=limit,
        )
    if exc.code == "too_complex_total":
        return translate(
            locale,
            "The server's regular expressions together may have at most {limit} RE2 instructions "
            "(they have {used}); this one would go over. Remove or simplify one first.",
            limit=limit,
            used=info.get("used"),
        )
    if exc.code == "matches_everything":
        return translate(locale, "That regular expression matches an empty prompt, so it would refuse every prompt.")
    if exc.code == "duplicate":
        return translate(locale, "That rule exists already (rule #{rule_id}).", rule_id=info.get("rule_id"))
    if exc.code == "too_many":
        return translate(locale, "This server has the maximum of {limit} rules. Remove one first.", limit=limit)
    if exc.code == "too_many_regex":
        return translate(
            locale, "This server has the maximum of {limit} regular-expression rules. Remove one first.", limit=limit
        )
    return translate(locale, "That rule can't be added.")


_FIELD = re.compile(r"[a-z_]{1,40}(\[\d{0,2}\])?")


# --- options and input files (bot/jobs/options.py, bot/imaging/inputs.py, cogs/edit/loader.py) ---------------------


# Words by code: the parameters are the exception's own (``what`` is translated by ``subject``).
OPTION_WORDS = {
    "size": N_("Size `{size}` won't work with {model}: {reason}"),
    "quality": N_("Quality `{quality}` isn't available on {model}; choose one of {choices}."),
    "background": N_("Background must be `auto`, `opaque` or `transparent`."),
    "transparent": N_("{model} can't make transparent backgrounds."),
    "format": N_("Format must be `png`, `jpeg` or `webp`."),
    "jpeg_transparent": N_("JPEG can't be transparent: choose `png` or `webp` for a transparent background."),
    "count": N_("Count must be between 1 and {max}."),
    "format_model": N_("{model} can't make {format} images."),
    "complexity": N_("Complexity must be `low`, `medium` or `high`."),
    "complexity_model": N_("{model} doesn't take a complexity setting."),
    "frames_gif_only": N_("Frame count and frame duration only apply to the GIF format."),
    "frame_count": N_("Frame count must be between {low} and {high}."),
    "frame_duration": N_("Frame duration must be between {low} and {high} milliseconds."),
    "preview_mask": N_("{format} images can't be made with a mask."),
    "svg_count": N_("SVG makes one image at a time: leave count at 1."),
    "markup_model": N_("{model} can't read a markup layer. Models that can: {models}."),
    "markup_mask": N_("Use either a mask or a markup layer, not both."),
    "model": N_("`{model}` isn't one of the models this server allows: {models}."),
}
INPUT_WORDS = {
    "not_image": N_("{what} `{name}` isn't an image. Please use a PNG, JPEG, WebP or GIF file."),
    "svg": N_("{what} `{name}` is an SVG drawing; please export it as PNG first."),
    "empty": N_("{what} `{name}` is empty (0 bytes)."),
    "file_too_large": N_("{what} `{name}` is {size}; the limit is {limit}."),
    "too_many_pixels": N_("{what} `{name}` is too large: at most {mp} megapixels, please."),
    "too_many_pixels_dims": N_("{what} `{name}` is too large ({width}×{height}): at most {mp} megapixels, please."),
    "unreadable": N_("{what} `{name}` isn't an image the bot can read."),
    "damaged": N_("{what} `{name}` is damaged and can't be read."),
    "no_pixels": N_("{what} `{name}` has no pixels."),
    "bomb": N_("{what} `{name}` expands to far too many pixels."),
    "incomplete": N_("{what} `{name}` is damaged or incomplete and can't be read."),
    "colour_format": N_("{what} `{name}` uses a colour format the bot can't convert."),
    "mask_marks_nothing": N_(
        "The mask marks nothing to edit: paint the area to change white (or make it transparent)."
    ),
    "mask_too_detailed": N_("The mask is too detailed to send (over 4 MB as PNG). Please use a simpler mask."),
    "dimensions_too_large": N_("{what} is too large ({width}×{height})."),
    "not_on_discord": N_("{what} isn't hosted on Discord, so the bot won't fetch it."),
    "download_failed": N_("{what} couldn't be downloaded from Discord (was it deleted?)."),
    "download_too_large": N_("{what} is larger than the {size} MB limit."),
    "markup_opaque": N_(
        "The markup `{name}` has no transparency: it must be a see-through layer with only your marks on it."
    ),
    "markup_empty": N_("The markup `{name}` is fully transparent: there are no marks on it."),
    "busy": N_("The bot is still preparing your other images. Please wait for them, then try again."),
}


def option_error(exc: OptionError, locale: str | None = None) -> str:
    """An option value or combination the model cannot do."""
    msgid = OPTION_WORDS.get(exc.code)
    if msgid is None:
        return translate(locale, "Those options won't work with this model.")
    return translate(locale, msgid, **exc.params)


_NTH_IMAGE = re.compile(r"Image (\d+)")
THE_IMAGE = N_("The image")
THE_MASK = N_("The mask")
THE_MARKUP = N_("The markup")


def nth_image(n: int) -> str:
    """What an input is called when an edit has several (``Image 2``); ``subject`` translates it."""
    return f"Image {n}"


def subject(what: str, locale: str | None = None) -> str:
    """An input's name (``The image``, ``The mask``, ``Image 2``) in the language of ``locale``."""
    match = _NTH_IMAGE.fullmatch(what)
    if match:
        return translate(locale, "Image {n}", n=format_number(locale, int(match[1])))
    return translate(locale, what)


def input_rejected(exc: InputRejected, locale: str | None = None) -> str:
    """Why an input file (an edit's image or mask) is not sent; nothing is charged."""
    p: dict[str, Any] = dict(exc.params)
    if "what" in p:
        p["what"] = subject(str(p["what"]), locale)
    code = exc.code
    if code == "reroll_source_gone":
        return translate(locale, REROLL_SOURCE_GONE)
    if code == "file_too_large":
        p["size"], p["limit"] = megabytes(int(p["size"])), megabytes(int(p["limit"]))
    elif code == "too_many_pixels":
        p["mp"] = format_number(locale, round(int(p.pop("max_pixels")) / 1e6))
        code = "too_many_pixels_dims" if "width" in p else code
    elif code == "download_too_large":
        p["size"] = int(p.pop("max_bytes")) // 2**20
    msgid = INPUT_WORDS.get(code)
    if msgid is None:
        return translate(locale, "That file can't be used.")
    return translate(locale, msgid, **p)


RESTARTING = N_("The bot is restarting right now. Please try again in a minute; nothing was charged.")
REROLL_SOURCE_GONE = N_("The image this edit started from is gone, so it can't be rerolled.")


def user_error(exc: BaseException, locale: str | None = None) -> str | None:
    """A message for errors users cause or can fix; None for bugs (logged, generic reply)."""
    if isinstance(exc, PromptRefused):
        return prompt_refused(exc, locale)
    if isinstance(exc, RuleError):
        return rule_error(exc, locale)
    if isinstance(exc, QuotaExceeded):
        return quota_exceeded(exc, locale)
    if isinstance(exc, OptionError):
        return option_error(exc, locale)
    if isinstance(exc, InputRejected):
        return input_rejected(exc, locale)
    if isinstance(exc, ServerNotCovered):
        return tenancy.server_not_covered(exc.keys_enabled, locale)
    if isinstance(exc, KeysDisabled):
        return translate(locale, tenancy.KEYS_DISABLED)
    if isinstance(exc, ShuttingDown):
        return translate(locale, RESTARTING)
    if isinstance(exc, TooManyJobs):
        return translate(
            locale,
            "You already have {limit} images in progress. Please wait for one to finish.",
            limit=format_number(locale, exc.limit),
        )
    if isinstance(exc, ImagesAPIError):
        return api_error(exc, locale)
    return None


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the error path's own words (cogs/_errors.py) -----------------------------------------------------

GENERIC = N_("Something went wrong on the bot's side. It has been logged; please try again.")
NOT_HERE = N_("You can't use this command here.")
SERVERS_ONLY = N_("This command works in servers only.")
FEATURE_UNAVAILABLE = N_("That isn't available right now. Please try again in a moment.")
RESULT_TOO_OLD = N_("This result is too old to reroll: its prompt is no longer kept. Start a new /imagine instead.")


def invalid_value(value: str, locale: str | None = None) -> str:
    shown = clip(value.replace("`", "'"), 40)
    return translate(locale, "That value for `{name}` isn't valid.", name=shown)


def bot_missing_permissions(names: list[str], locale: str | None = None) -> str:
    shown = translate(locale, ", ").join(
        f"**{translate(locale, PERMISSION_NAMES[n]) if n in PERMISSION_NAMES else n}**" for n in names
    )
    return translate_plural(
        locale,
        "I can't post images in this channel: I'm missing the {shown} permission. "
        "Please ask a moderator to allow it for me here. Nothing was charged.",
        "I can't post images in this channel: I'm missing the {shown} permissions. "
        "Please ask a moderator to allow it for me here. Nothing was charged.",
        len(names),
        shown=shown,
    )


def not_moderator(manager_role_id: int | None, *, admins_only: bool = False, locale: str | None = None) -> str:
    if admins_only:
        return translate(locale, "Only members with the Manage Server permission can change this. Nothing was changed.")
    if manager_role_id:
        return translate(
            locale,
            "Only moderators can use this command: it needs the Manage Server permission or the {role} role. "
            "Nothing was changed.",
            role="<@&" + str(manager_role_id) + ">",
        )
    return translate(
        locale, "Only moderators can use this command: it needs the Manage Server permission. Nothing was changed."
    )
