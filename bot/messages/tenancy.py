"""Words about who pays: servers the operator approved, servers' own API keys, the owner's commands.

Never a key in any of them: at most its last 4 characters. No Discord imports.
"""

from __future__ import annotations

from bot.messages.i18n import N_, translate

OWNER_ONLY = N_("Only the bot's owner (or a member of its team on the Developer Portal) can do this.")
KEYS_DISABLED = N_(
    "This bot cannot keep API keys: its operator has not set SERVER_KEY_SECRET, the secret that encrypts them "
    "at rest, so nothing was stored. Ask the operator to set it, or to approve this server."
)
KEY_MODAL_TITLE = N_("Your API key for this server")
KEY_LABEL = N_("API key")
BASE_URL_LABEL = N_("Base URL (optional: OpenAI when empty)")
KEY_NOTHING_TO_REMOVE = N_("This server has no API key of its own.")
KEY_REMOVED_OPERATOR = N_("Removed. Images in this server now use the bot operator's key again.")
KEY_REMOVED_REFUSED = N_(
    "Removed. Images in this server are refused until a manager sets a new key or the bot's operator "
    "approves the server."
)
KEY_MISSING = N_("The API key is empty.")
KEY_REJECTED = N_("That API refused the key (it is wrong, revoked or has no access). Nothing was stored.")
KEY_NO_CREDIT = N_("The key works but its account has no credit left. Nothing was stored.")
KEY_NO_MODEL = N_("The key works but that API does not offer the model {model}. Nothing was stored.")
KEY_UNREACHABLE = N_("The bot could not reach that API or could not read its answer. Nothing was stored.")
KEY_BAD_URL = N_(
    "The base URL must be an https:// address on the public internet, such as https://api.openai.com/v1. "
    "Nothing was stored."
)
NOTHING_APPROVED = N_("No server is approved at run time.")


def server_not_covered(keys_enabled: bool, locale: str | None = None) -> str:
    if keys_enabled:
        return translate(
            locale,
            "This server isn't set up to make images with this bot. A server manager can give the bot the "
            "server's own API key with /apikey set, or ask the bot's operator to approve this server.",
        )
    return translate(
        locale,
        "This server isn't set up to make images with this bot. A server manager can ask the bot's operator "
        "to approve this server.",
    )


def key_saved(last4: str, base_url: str, locale: str | None = None) -> str:
    return translate(
        locale,
        "Saved. Images in this server now use this server's own key (ending in {last4}) at {base_url}, "
        "and are billed to that key, not to the bot's operator.",
        last4=last4 or "…",
        base_url=base_url,
    )


def key_status(last4: str | None, base_url: str | None, operator_pays: bool, locale: str | None = None) -> str:
    if last4 is not None:
        return translate(
            locale,
            "This server uses its own API key (ending in {last4}) at {base_url}. Manage it with /apikey set "
            "and /apikey remove.",
            last4=last4 or "…",
            base_url=base_url or "https://api.openai.com/v1",
        )
    if operator_pays:
        return translate(locale, "This server has no key of its own: its images use the bot operator's key.")
    return translate(
        locale,
        "This server has no key of its own and is not approved by the bot's operator: images are refused "
        "here until a manager sets a key with /apikey set.",
    )


def key_check_failed(kind: str, model: str, locale: str | None = None) -> str:
    """Why a key was not stored: ``kind`` from ``bot.ops.doctor_api.check_server_key``."""
    if kind == "rejected":
        return translate(locale, KEY_REJECTED)
    if kind == "credit":
        return translate(locale, KEY_NO_CREDIT)
    if kind == "model":
        return translate(locale, KEY_NO_MODEL, model=model)
    return translate(locale, KEY_UNREACHABLE)


def approved(guild: str, already: bool, locale: str | None = None) -> str:
    if already:
        return translate(locale, "Server {guild} was already approved.", guild=guild)
    return translate(locale, "Approved: server {guild} now uses the operator's API key.", guild=guild)


def revoked(guild: str, changed: bool, locale: str | None = None) -> str:
    if not changed:
        return translate(locale, "Server {guild} was not approved at run time.", guild=guild)
    return translate(locale, "Revoked: server {guild} no longer uses the operator's API key.", guild=guild)


def listing(
    public: bool | None, mode: str, allowed: list[str], approved_ids: list[str], locale: str | None = None
) -> str:
    if mode == "none":
        head = translate(locale, "OPERATOR_KEY_SERVERS=none: no server uses the operator's key.")
    elif mode == "auto" and public is False:
        head = translate(
            locale, "The application is private (Public Bot off): every server the bot is in uses the operator's key."
        )
    else:
        head = translate(
            locale, "Only these servers use the operator's key (and servers with their own key use theirs):"
        )
    lines = [head]
    if allowed:
        lines.append(translate(locale, "From ALLOWED_GUILD_IDS: {ids}", ids=", ".join(allowed)))
    lines.append(
        translate(locale, "Approved at run time: {ids}", ids=", ".join(approved_ids))
        if approved_ids
        else translate(locale, NOTHING_APPROVED)
    )
    return "\n".join(lines)
