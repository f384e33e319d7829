"""Words for a job's life and for editing: refusals and notes the cogs show (``cogs/_delivery.py``,
``cogs/results.py``, ``cogs/edit/``). Constants are msgids (show one with ``text(locale, CONSTANT)``)."""

from __future__ import annotations

from bot.messages.i18n import N_, format_number, translate

# --- jobs and their results (cogs/_delivery.py, cogs/results.py) -----------------------------------

EMPTY_PROMPT = N_("Please describe the image you want in `prompt`.")
NO_IMAGE = N_("No image came back. Please try again.")
JOB_UNKNOWN = N_("That job is no longer known to the bot.")
JOB_NOT_HERE = N_("That button doesn't belong to a job of this channel, so it does nothing here.")
CANCEL_NOT_YOURS = N_("Only the person who asked for this image, or a moderator, can cancel it.")
JOB_ALREADY_ENDED = N_("That job has already ended (or its result is being posted), so there is nothing to cancel.")
DELETE_NOT_YOURS = N_("Only the person who asked for this image, or a moderator with Manage Messages, can delete it.")


def stopped(reason: str, by: str | None, *, kept: int = 0, total: int = 1, locale: str | None = None) -> str:
    """Why a job ended early. ``by`` is a display name (shown as text: nobody is pinged)."""
    if reason == "shutdown":
        return translate(
            locale, "The bot restarted before this image was finished. This didn't count against your quota."
        )
    if kept:
        counts = {"kept": format_number(locale, kept), "total": format_number(locale, total)}
        if by:
            return translate(
                locale, "🛑 Cancelled by {name} · {kept} of {total} images finished and kept", name=by, **counts
            )
        return translate(locale, "🛑 Cancelled · {kept} of {total} images finished and kept", **counts)
    if by:
        return translate(locale, "🛑 Cancelled by {name}. Nothing was charged.", name=by)
    return translate(locale, "🛑 Cancelled. Nothing was charged.")


def undelivered(status: int | None, code: int | None, locale: str | None = None) -> str:
    """The result was made but could not be posted; the user is not charged for it."""
    if status == 403 and code == 50013:
        reason = translate(
            locale,
            "the bot isn't allowed to post it here (it needs the Attach Files and Send Messages permissions)",
        )
    elif status == 413 or code == 40005:
        reason = translate(locale, "Discord refused the file as too large")
    elif status is not None and status >= 500:
        reason = translate(locale, "Discord had a problem accepting it")
    else:
        reason = translate(locale, "Discord refused it")
    return translate(
        locale,
        "The image was made, but couldn't be delivered: {reason}. This didn't count against your quota.",
        reason=reason,
    )


# --- editing (cogs/edit/) -------------------------------------------------------------------------------

EDIT_EMPTY_PROMPT = N_("Please say what to change in `prompt`.")
EDIT_NO_INSTRUCTION = N_("Please say what to change.")
MESSAGE_GONE = N_("I can't see that message any more.")
NO_IMAGE_TO_EDIT = N_("That message has no image to edit.")
SERVERS_ONLY_EDIT = N_("I edit images in servers only.")
REPLIED_MESSAGE_GONE = N_("I can't find the message you replied to; it may have been deleted.")
NO_IMAGE_SEEN = N_(
    "That message has no image I can see. Reply to a message with an image, or use "
    "right-click → **Apps** → **Edit image** on it."
)
REPLY_NO_INSTRUCTION = N_("What should I change? Reply again with an instruction, e.g. *make it night time*.")
PREPARING = N_("🎨 Getting the image ready…")
HOW_TO_EDIT = N_(
    "To edit an image, reply to the message that has it, mention me and say what to change "
    "(for example *make it night time*), or right-click the message → **Apps** → **Edit image**. "
    "`/edit` takes an uploaded image; `/imagine` makes a new one."
)
