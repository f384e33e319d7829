"""End to end: the bot checks its own permissions in the channel before it reserves anything."""

from __future__ import annotations

import dataclasses

from bot.demo.discord.payloads import ATTACH_FILES, EMBED_LINKS
from tests.helpers.e2e import EPHEMERAL, job_rows
from tests.plugins.rig import Rig


def _deny_bot(rig: Rig, permission: int) -> None:
    """Take a permission away from the bot (its role and @everyone), as a server admin would."""
    world = rig.discord.world
    for key in ("everyone", "bot"):
        role = world.roles[key]
        world.roles[key] = dataclasses.replace(role, permissions=role.permissions & ~permission)


async def test_imagine_without_attach_files_is_refused_privately_before_any_charge(rig: Rig) -> None:
    _deny_bot(rig, ATTACH_FILES)
    await rig.start_bot()
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a kite"}))
    await h.wait_for(lambda h: h.original is not None)
    assert h.callback_types == [4] and h.msg["flags"] & EPHEMERAL
    assert "**Attach Files**" in h.msg["content"] and "Nothing was charged" in h.msg["content"]
    assert job_rows(rig) == []
    assert rig.images.requests == []


async def test_a_reply_without_embed_links_is_answered_with_the_missing_permission(rig: Rig) -> None:
    _deny_bot(rig, EMBED_LINKS)
    await rig.start_bot()
    fd = rig.discord
    png = fd.add_attachment(b"not downloaded: refused before", "cat.png", "image/png")
    source = fd.create_user_message("bob", "a cat", [png])
    await fd.inject_message(fd.reply("alice", f"<@{fd.bot_id}> make it night", source))
    await fd.wait_for(lambda: any("Embed Links" in (m.get("content") or "") for m in fd.bot_messages()))
    assert job_rows(rig) == [] and rig.images.requests == []
