"""The permissions the bot needs (``NEEDED``, the one table the doctor, the pre-job check in
``cogs/_checks.py`` and the refusal's words in ``bot/messages/`` read), and the arithmetic of what it has
in a channel, for ``bot.ops.doctor``.

Pure functions over Discord's REST JSON (roles, member, channel with ``permission_overwrites``), following
Discord's documented order: base permissions from @everyone and the member's roles (owner and Administrator
have everything), then the channel's @everyone overwrite, the union of its role overwrites, the member's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
ADMINISTRATOR = 1 << 3
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL = (1 << 53) - 1


def N_(msgid: str) -> str:
    """Marks a name for the message catalogs (as ``bot/messages/i18n.py``'s ``N_``, which this module cannot
    import: ``bot/messages/`` reads this table); it is translated where a member reads it."""
    return msgid


@dataclass(frozen=True, slots=True)
class Needed:
    attr: str  # discord.py's ``Permissions`` attribute: what the pre-job check reads
    bit: int  # Discord's permission bit: what the doctor computes from the REST API's JSON
    name: str  # as Discord's client names it
    replies_only: bool = False  # needed only to answer a reply to a message


# What the bot needs in each channel it is used in: previews and results are attachments with an embed, large
# results and expired interactions fall back to channel messages, and a reply to a message needs the history.
NEEDED: tuple[Needed, ...] = (
    Needed("view_channel", VIEW_CHANNEL, N_("View Channel")),
    Needed("send_messages", SEND_MESSAGES, N_("Send Messages")),
    Needed("attach_files", ATTACH_FILES, N_("Attach Files")),
    Needed("embed_links", EMBED_LINKS, N_("Embed Links")),
    Needed("read_message_history", READ_MESSAGE_HISTORY, N_("Read Message History"), replies_only=True),
)
TO_ANSWER = ("view_channel", "send_messages")  # without these the bot cannot even say what is missing
JOB_PERMISSIONS = tuple(n.attr for n in NEEDED if not n.replies_only)
REPLY_PERMISSIONS = tuple(n.attr for n in NEEDED)
PERMISSION_NAMES = {n.attr: n.name for n in NEEDED}
CHANNEL_NEEDS: dict[int, str] = {n.bit: n.name for n in NEEDED}
# The invite asks for these, plus Send Messages in Threads (results in threads).
INVITE_PERMISSIONS = sum(CHANNEL_NEEDS) | SEND_MESSAGES_IN_THREADS
# Channel types the bot answers in: text, announcement, voice (text chat), stage (text chat).
MESSAGE_CHANNEL_TYPES = frozenset({0, 2, 5, 13})


def invite_url(application_id: int | str) -> str:
    query = urlencode(
        {"client_id": str(application_id), "scope": "bot applications.commands", "permissions": INVITE_PERMISSIONS},
        safe="",
    ).replace("%20", "+")
    return f"https://discord.com/oauth2/authorize?{query}"


def names(bits: int) -> list[str]:
    """The needed permissions missing from ``bits``, in a fixed order."""
    return [name for bit, name in CHANNEL_NEEDS.items() if not bits & bit]


def base_permissions(
    *,
    guild_id: int,
    owner_id: int | None,
    member_id: int,
    member_roles: Iterable[int],
    roles: Iterable[Mapping[str, Any]],
) -> int:
    if owner_id is not None and owner_id == member_id:
        return ALL
    by_id = {int(r["id"]): int(r.get("permissions") or 0) for r in roles}
    perms = by_id.get(guild_id, 0)
    for role_id in member_roles:
        perms |= by_id.get(int(role_id), 0)
    return ALL if perms & ADMINISTRATOR else perms


def channel_permissions(
    base: int, channel: Mapping[str, Any], *, guild_id: int, member_id: int, member_roles: Iterable[int]
) -> int:
    if base & ADMINISTRATOR:
        return ALL
    overwrites = {int(o["id"]): o for o in channel.get("permission_overwrites") or []}
    perms = base

    def apply(o: Mapping[str, Any] | None) -> None:
        nonlocal perms
        if o is not None:
            perms &= ~int(o.get("deny") or 0)
            perms |= int(o.get("allow") or 0)

    apply(overwrites.get(guild_id))
    allow = deny = 0
    for role_id in member_roles:
        o = overwrites.get(int(role_id))
        if o is not None and int(o.get("type", 0)) == 0:
            allow |= int(o.get("allow") or 0)
            deny |= int(o.get("deny") or 0)
    perms = (perms & ~deny) | allow
    member = overwrites.get(member_id)
    if member is not None and int(member.get("type", 1)) == 1:
        apply(member)
    return perms
