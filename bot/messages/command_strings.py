"""Catalog entries the extractor cannot find at their call sites: command names, descriptions and choices.

Messages are marked where they are shown (``translate(locale, "...")`` or ``N_`` in ``bot/messages/``).
Command names, descriptions and choices are read from the command tree by ``cogs/_translator.py``; they
are listed here because the extractor cannot see ``app_commands.describe(...)`` keywords. Each string is
marked exactly as the command tree has it.
"""

from __future__ import annotations

from bot.messages.i18n import N_, NC_

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
    # cogs/rules.py: /quota rule add|remove|list
    NC_("command name", "rule"),
    NC_("command name", "add"),
    NC_("command name", "remove"),
    NC_("command name", "list"),
    NC_("command name", "text"),
    NC_("command name", "regex"),
    NC_("command name", "sfw_only"),
    NC_("command name", "id"),
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
    # choices (bot/jobs/options.py, bot/images/models.py); sizes are "<W>x<H> (<shape>)"
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
    # cogs/rules.py
    N_("Moderators: words and patterns prompts may not contain"),
    N_("Moderators: refuse prompts that contain a word, a phrase or a pattern"),
    N_("A word or phrase (whole words, any case or width), or a regular expression with regex:True"),
    N_("True: text is an RE2 regular expression, matched case-insensitively"),
    N_("True: apply the rule only in channels that are not age-restricted (NSFW)"),
    N_("Moderators: remove a prompt rule (its number is in the list)"),
    N_("The rule's number, as /quota rule list shows it"),
    N_("Moderators: this server's prompt rules"),
)
