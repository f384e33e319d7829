"""Catalog entries whose call sites do not call ``bot.i18n.translate`` yet (phase 1 of issue 12).

Each string is marked for the extractor (``python -m bot.i18n_tool extract``) exactly as the call site
will pass it to ``translate``: the English text with ``{named}`` placeholders. When a call site is
switched to ``translate(locale, "...")``, its entry here is deleted (the extractor then finds it there).

Command names, descriptions and choices are read from the command tree by ``cogs/_translator.py``;
they are listed here because the extractor cannot see ``app_commands.describe(...)`` keywords.
"""

from __future__ import annotations

from bot.i18n import N_, NC_, NP_

COMMAND_NAMES = (
    # Translators: command, subcommand and option names. Discord wants them lowercase, 1-32 letters,
    # digits, "-" or "_" (no spaces, except "Edit image", a message menu).
    NC_("command name", "imagine"),
    NC_("command name", "edit"),
    NC_("command name", "Edit image"),
    NC_("command name", "quota"),
    NC_("command name", "me"),
    NC_("command name", "show"),
    NC_("command name", "set"),
    NC_("command name", "role"),
    NC_("command name", "default"),
    NC_("command name", "reset"),
    NC_("command name", "budget"),
    NC_("command name", "report"),
    NC_("command name", "audit"),
    NC_("command name", "timezone"),
    NC_("command name", "managerrole"),
    NC_("command name", "prompt"),
    NC_("command name", "size"),
    NC_("command name", "quality"),
    NC_("command name", "background"),
    NC_("command name", "format"),
    NC_("command name", "count"),
    NC_("command name", "image"),
    NC_("command name", "mask"),
    NC_("command name", "user"),
    NC_("command name", "daily"),
    NC_("command name", "monthly"),
    NC_("command name", "clear"),
    NC_("command name", "usd"),
    NC_("command name", "tz"),
)

COMMAND_TEXTS = (
    # cogs/imagine.py, cogs/edit/cog.py, cogs/_common.py (the shared image options)
    N_("Create an image from a text prompt"),
    N_("What to draw"),
    N_("Change an image with a text instruction"),
    N_("The image to edit (PNG, JPEG, WebP, GIF…)"),
    N_("What to change, e.g. make it night time"),
    N_("Optional: where to edit. Transparent (or white on black) = edit there"),
    N_("Image size or aspect ratio"),
    N_("Higher quality takes longer and costs more"),
    N_("Transparent needs PNG or WebP"),
    N_("File format of the result"),
    N_("How many images (1-10)"),
    # choices (bot/options.py, bot/images/models.py); sizes are "<W>x<H> (<shape>)"
    N_("auto"),
    N_("low"),
    N_("medium"),
    N_("high"),
    N_("xhigh"),
    N_("max"),
    N_("opaque"),
    N_("transparent"),
    N_("{size} (square)"),
    N_("{size} (landscape)"),
    N_("{size} (portrait)"),
    # cogs/quota/cog.py
    N_("Image quotas: your usage, and limits for moderators"),
    N_("Your images used and remaining today and this month"),
    N_("Moderators: a member's limits, usage and recent jobs"),
    N_("Whose quota to show"),
    N_("Moderators: a member's own daily and monthly image limits"),
    N_("Whose limits to set"),
    N_("Images; 0 blocks, -1 is unlimited; leave out to keep"),
    N_("True: remove the limits set here, so the level below applies (values given are then set)"),
    N_("Moderators: daily and monthly image limits for members of a role"),
    N_("The role"),
    N_("Moderators: the server's default daily and monthly image limits"),
    N_("Moderators: clear a member's usage for today and this month"),
    N_("Whose usage to clear"),
    N_("Moderators: the server's monthly spending cap in US dollars"),
    N_("Monthly budget in USD; 0 stops all images, -1 removes the budget; leave out to see it"),
    N_("Moderators: this month's images and spend per member, with a CSV"),
    N_("Moderators: the latest quota changes (who, what, when)"),
    N_("Moderators: the time zone in which days and months start"),
    N_("An IANA time zone such as Europe/Berlin or America/New_York; leave out to see it"),
    N_("Manage Server only: a role whose members may manage quotas"),
    N_("Members with this role may use the moderator commands"),
    N_("True: remove it"),
)

MESSAGES = (
    # bot/messages.py: quota refusals
    N_("Image generation is turned off for you on this server."),
    N_("This server has used its monthly image budget ({budget}). It resets {when}."),
    NP_(
        "You've reached your limit of {n} image today ({detail}). It resets {when}. Use `/quota me` to see your usage.",
        "You've reached your limit of {n} images today ({detail}). It resets {when}. "
        "Use `/quota me` to see your usage.",
    ),
    NP_(
        "You've reached your limit of {n} image this month ({detail}). It resets {when}. "
        "Use `/quota me` to see your usage.",
        "You've reached your limit of {n} images this month ({detail}). It resets {when}. "
        "Use `/quota me` to see your usage.",
    ),
    N_("{used} used"),
    N_("{used} used; you asked for {asked} but only {left} left"),
    # bot/messages.py: the image service
    N_(
        "The image service declined this request under its safety rules. "
        "Try rewording the prompt. This didn't count against your quota."
    ),
    N_("The bot's OpenAI API key was rejected. Please tell the server owner."),
    N_("The bot's OpenAI organization must be verified to use this model. Please tell the server owner."),
    N_("The bot's OpenAI account isn't allowed to use this model. Please tell the server owner."),
    N_("The bot's OpenAI account is out of credit. Please tell the server owner."),
    N_("The image service is busy right now (rate limit). Please try again in a minute."),
    N_("The image service had a problem. Please try again in a moment."),
    N_("The image service refused these settings{param}: {reason}"),
    N_("invalid request"),
    N_("The image service sent back a broken image file. Please try again; this one isn't charged."),
    N_("The connection to the image service broke off. Please try again."),
    N_("The image service couldn't make this image. Please try again."),
    N_("Something went wrong making this image. Please try again."),
    N_("You already have {limit} images in progress. Please wait for one to finish."),
    # bot/messages.py: the error path
    N_("Something went wrong on the bot's side. It has been logged; please try again."),
    N_("You can't use this command here."),
    N_("This command works in servers only."),
    N_("That isn't available right now. Please try again in a moment."),
    N_("That value for `{name}` isn't valid."),
    N_("Only members with the Manage Server permission can change this. Nothing was changed."),
    N_("Only moderators can use this command: it needs the Manage Server permission. Nothing was changed."),
    N_(
        "Only moderators can use this command: it needs the Manage Server permission or the {role} role. "
        "Nothing was changed."
    ),
    # bot/messages.py: jobs and their results
    N_("Please describe the image you want in `prompt`."),
    N_("No image came back. Please try again."),
    N_("That job is no longer known to the bot."),
    N_("That button doesn't belong to a job of this channel, so it does nothing here."),
    N_("Only the person who asked for this image, or a moderator, can cancel it."),
    N_("That job has already ended (or its result is being posted), so there is nothing to cancel."),
    N_("The bot is restarting right now. Please try again in a minute; nothing was charged."),
    N_("Only the person who asked for this image, or a moderator with Manage Messages, can delete it."),
    N_("The bot restarted before this image was finished. This didn't count against your quota."),
    N_("🛑 Cancelled by {name} · {kept} of {total} images finished and kept"),
    N_("🛑 Cancelled · {kept} of {total} images finished and kept"),
    N_("🛑 Cancelled by {name}. Nothing was charged."),
    N_("🛑 Cancelled. Nothing was charged."),
    N_("The image was made, but couldn't be delivered: {reason}. This didn't count against your quota."),
    N_("the bot isn't allowed to post it here (it needs the Attach Files and Send Messages permissions)"),
    N_("Discord refused the file as too large"),
    N_("Discord had a problem accepting it"),
    N_("Discord refused it"),
    # bot/messages.py: editing
    N_("Please say what to change in `prompt`."),
    N_("Please say what to change."),
    N_("I can't see that message any more."),
    N_("That message has no image to edit."),
    N_("I edit images in servers only."),
    N_("I can't find the message you replied to; it may have been deleted."),
    N_(
        "That message has no image I can see. Reply to a message with an image, or use "
        "right-click → **Apps** → **Edit image** on it."
    ),
    N_("What should I change? Reply again with an instruction, e.g. *make it night time*."),
    N_("🎨 Getting the image ready…"),
    N_(
        "To edit an image, reply to the message that has it, mention me and say what to change "
        "(for example *make it night time*), or right-click the message → **Apps** → **Edit image**. "
        "`/edit` takes an uploaded image; `/imagine` makes a new one."
    ),
    N_("The image this edit started from is gone, so it can't be rerolled."),
    N_("{what} is too large ({width}×{height})."),
    N_("{what} isn't hosted on Discord, so the bot won't fetch it."),
    N_("{what} couldn't be downloaded from Discord (was it deleted?)."),
    N_("{what} is larger than the {size} MB limit."),
)

RENDER = (
    # cogs/_render.py: progress and the result embed
    N_("⏳ **Queued**, position {position} · requested {when}"),
    N_("🎨 **Generating…** started {when}"),
    N_("frame {frame}/{total}"),
    N_("failed"),
    N_("done"),
    N_("waiting"),
    N_("Edited image"),
    N_("Imagined"),
    N_("Model"),
    N_("Size"),
    N_("Quality"),
    N_("Background"),
    N_("Format"),
    N_("Images"),
    N_("Requested by {name} · job #{job}"),
    # cogs/results.py: the result buttons
    N_("Reroll"),
    N_("Edit"),
    N_("Delete"),
    N_("Cancel"),
    # cogs/edit/cog.py: the edit form
    N_("Edit image"),
    N_("What should change?"),
    N_("make it night time"),
)

QUOTA = (
    # cogs/quota/render.py (the /quota me lines call translate already)
    N_("a limit is -1 (unlimited), 0 (blocked) or a number of images up to {max}"),
    NP_("{n} image", "{n} images"),
    NP_("{n} job", "{n} jobs"),
    N_("unlimited"),
    N_("blocked (0)"),
    N_("not set"),
    NP_("{n} image reserved", "{n} images reserved"),
    N_("refunded"),
    N_("Image quota of {name}"),
    N_("… and {n} more"),
    N_("None yet."),
    N_("Recent jobs"),
    N_("Time zone {tz} · -1 = unlimited, 0 = blocked"),
    N_("daily {old} → **{new}**"),
    N_("monthly {old} → **{new}**"),
    N_("No images this month yet."),
    N_("… and {n} more users (see the CSV)"),
    N_("Image usage this month"),
    N_("Since {day}, resets {when} ({tz})"),
    N_("Total"),
    N_("Budget"),
    N_("{spent} of {budget}"),
    N_("The CSV lists every job of the month: status, images, tokens, estimated and actual cost."),
    N_("no budget"),
    N_("cleared {daily} today, {monthly} this month"),
    N_("none"),
    # cogs/quota/cog.py
    N_("Limits of {user}: {changes}.\nNow:"),
    N_("Limits of {role}: {changes}."),
    N_("A member's own limit comes first; with several roles, the most generous role limit applies."),
    N_("{daily} a day, {monthly} a month"),
    N_("Server default: {changes}."),
    N_(
        "It applies to members without a limit of their own or from a role. Where it is not set, the bot "
        "default applies ({bot_default})."
    ),
    N_(
        "Nothing to change: give `daily` and/or `monthly` (a number of images, 0 blocks, -1 is unlimited), "
        "or `clear:True` to remove the limits set here."
    ),
    N_(
        "Cleared the usage of {user}: the {daily} of today and {monthly} of this month no longer count "
        "against their limits. The ledger and the server budget keep them."
    ),
    N_("Budget removed: no monthly cap."),
    N_("This server has no monthly budget."),
    N_("Set one with `/quota budget usd:<dollars>`."),
    N_("Monthly budget set to {budget}."),
    N_("Monthly budget."),
    N_("With a budget of $0 nobody can make images until it is raised or removed (`usd:-1`)."),
    N_("The ledger is too large to attach, even compressed."),
    N_("No quota changes recorded yet."),
    N_("… and {n} older"),
    N_("Quota changes, newest first"),
    N_("`{tz}` isn't a time zone I know. Pick one from the list, e.g. `Europe/Berlin`."),
    N_("Time zone set: **{tz}**. Days reset {day}, months {month}."),
    N_("Time zone: **{tz}**. Days reset {day}, months {month}."),
    N_("Give either `role` or `clear:True`, not both."),
    N_("No manager role: only members with Manage Server can manage quotas."),
    N_("Members with {role} can manage quotas (as can everyone with Manage Server)."),
)
