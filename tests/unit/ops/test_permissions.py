"""The doctor's permission arithmetic (``bot/ops/permissions.py``): Discord's documented overwrite order."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from bot.ops import permissions as p

GUILD, BOT, ROLE, OTHER = 1, 2, 3, 4
EVERYONE_PERMS = p.VIEW_CHANNEL | p.SEND_MESSAGES | p.READ_MESSAGE_HISTORY
ROLES = [
    {"id": str(GUILD), "permissions": str(EVERYONE_PERMS)},
    {"id": str(ROLE), "permissions": str(p.ATTACH_FILES | p.EMBED_LINKS)},
    {"id": str(OTHER), "permissions": str(p.ADMINISTRATOR)},
]


def base(roles: list[int], owner: int | None = None) -> int:
    return p.base_permissions(guild_id=GUILD, owner_id=owner, member_id=BOT, member_roles=roles, roles=ROLES)


def channel(base_bits: int, *overwrites: tuple[int, int, int, int], roles: list[int] | None = None) -> int:
    ch = {
        "permission_overwrites": [
            {"id": str(i), "type": t, "allow": str(a), "deny": str(d)} for i, t, a, d in overwrites
        ]
    }
    return p.channel_permissions(base_bits, ch, guild_id=GUILD, member_id=BOT, member_roles=roles or [ROLE])


def test_base_is_everyone_plus_roles_and_owner_or_admin_have_everything() -> None:
    assert p.names(base([ROLE])) == []
    assert p.names(base([])) == ["Attach Files", "Embed Links"]
    assert base([OTHER]) == p.ALL and base([], owner=BOT) == p.ALL


def test_overwrites_apply_everyone_then_roles_then_member() -> None:
    b = base([ROLE])
    # @everyone denies Send Messages, the bot's role allows it back
    assert channel(b, (GUILD, 0, 0, p.SEND_MESSAGES), (ROLE, 0, p.SEND_MESSAGES, 0)) & p.SEND_MESSAGES
    # a role deny wins over @everyone's allow; a member allow wins over the role deny
    assert not channel(b, (GUILD, 0, p.ATTACH_FILES, 0), (ROLE, 0, 0, p.ATTACH_FILES)) & p.ATTACH_FILES
    assert channel(b, (ROLE, 0, 0, p.ATTACH_FILES), (BOT, 1, p.ATTACH_FILES, 0)) & p.ATTACH_FILES
    # overwrites for roles the bot does not have change nothing
    assert channel(b, (OTHER, 0, 0, p.VIEW_CHANNEL)) & p.VIEW_CHANNEL
    # Administrator ignores overwrites
    assert channel(p.ALL, (GUILD, 0, 0, p.VIEW_CHANNEL)) == p.ALL


def test_invite_url_scopes_and_permissions() -> None:
    q = parse_qs(urlsplit(p.invite_url(42)).query)
    assert q == {"client_id": ["42"], "scope": ["bot applications.commands"], "permissions": ["274878024704"]}
    assert "scope=bot+applications.commands" in p.invite_url(42)
