"""Channel permissions: overwrites a test sets, and the checks REST applies to the bot.

One source of truth, ``World.permissions_in``, feeds all three views the bot can have: the interaction's
``app_permissions``, the gateway's channel data (``permission_overwrites`` in GUILD_CREATE and a
CHANNEL_UPDATE when a test changes them, so discord.py's ``channel.permissions_for(guild.me)`` agrees),
and the 403s REST answers (50001 Missing Access without View Channel, 50013 Missing Permissions).
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.demo.discord.driver import Driver
from bot.demo.discord.payloads import VIEW_CHANNEL, FakeRole, FakeUser, permission_bits
from bot.demo.discord.records import Fail, error

Perms = int | str | Iterable[str | int]


class Permissions(Driver):
    def bot_permissions(self, channel_id: int) -> int:
        """The bot's permissions in a channel (overwrites and implicit rules applied)."""
        return self.world.permissions_in("bot", channel_id)

    async def set_permission_overwrite(
        self, channel_id: int, target: FakeUser | FakeRole | int, *, allow: Perms = 0, deny: Perms = 0
    ) -> None:
        """Set (replace) one overwrite of a guild channel for a member (``FakeUser``), a role
        (``FakeRole``) or an id (a user's, a role's, or the guild's for @everyone); allow and deny both
        empty removes it. Bits, a name like ``"ATTACH_FILES"`` or an iterable of either. Connected
        sessions get CHANNEL_UPDATE."""
        ch = self.world.channels[channel_id]
        gid = int(ch["guild_id"])
        if isinstance(target, FakeUser):
            tid, ttype = target.id, 1
        elif isinstance(target, FakeRole):
            tid, ttype = target.id, 0
        else:
            tid = int(target)
            role_ids = {r.id for r in self.world.guilds[gid].roles.values()}
            ttype = 0 if tid in role_ids else 1
        a, d = permission_bits(allow), permission_bits(deny)
        overwrites = [o for o in ch.get("permission_overwrites") or [] if int(o["id"]) != tid]
        if a or d:
            overwrites.append({"id": str(tid), "type": ttype, "allow": str(a), "deny": str(d)})
        ch["permission_overwrites"] = overwrites
        await self._dispatch_to_guild(gid, "CHANNEL_UPDATE", dict(ch))

    async def set_bot_permissions(self, channel_id: int, *, deny: Perms = 0, allow: Perms = 0) -> None:
        """Deny (or allow) the bot permissions in one channel through a member overwrite, e.g.
        ``await fd.set_bot_permissions(fd.channel_id, deny={"ATTACH_FILES"})``; ``deny=0`` (the default)
        restores the default of everything allowed. Seen by app_permissions, the gateway and REST."""
        await self.set_permission_overwrite(channel_id, self.bot_user, allow=allow, deny=deny)

    def _require(self, channel_id: int, *needed: int) -> None:
        """Raise the 403 Discord answers when the bot lacks View Channel (50001) or any of ``needed``
        (50013) in a guild channel; DMs have no permissions to check."""
        if self.world.guild_of_channel(channel_id) is None:
            return
        perms = self.bot_permissions(channel_id)
        if not perms & VIEW_CHANNEL:
            raise Fail(*error(403, 50001, "Missing Access"))
        for bit in needed:
            if not perms & bit:
                raise Fail(*error(403, 50013, "Missing Permissions"))

    def _require_for_interaction(self, channel_id: int, needed: int) -> None:
        """Interaction responses need no View Channel, but files still need Attach Files there."""
        if self.world.guild_of_channel(channel_id) is not None and not self.bot_permissions(channel_id) & needed:
            raise Fail(*error(403, 50013, "Missing Permissions"))
