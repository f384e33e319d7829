"""End to end: languages. The real bot syncs zh-CN localizations for every command, and answers a zh-CN
user in Chinese (``/quota me``, the empty-prompt refusal of ``/imagine``); others read English.

The fake Discord validates the synced commands against Discord's schema (lengths, counts) at the end of
every test; the naming rule for localized names is checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.conftest import Rig
from tests.e2e import EPHEMERAL
from tests.fakes.discord import FakeDiscord, InteractionHandle

ZH = "zh-CN"
# Discord's rule for CHAT_INPUT command and option names; \w is Unicode-aware (letters and digits of
# every script, Chinese included).
NAME_RULE = re.compile(r"^[-_\w]{1,32}$")
# Choices that stay as they are in every language: sizes such as "16:9 (1536x864)" and format names.
UNLOCALIZED_CHOICES = re.compile(r"^(\d+:\d+ \(\d+x\d+\)|PNG|JPEG|WEBP)$")


def walk(command: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named thing of a synced command: itself, its subcommands, options and choices."""
    yield "command", command
    for option in command.get("options") or []:
        yield from _walk_option(option)


def _walk_option(option: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "option", option
    for choice in option.get("choices") or []:
        yield "choice", choice
    for sub in option.get("options") or []:
        yield from _walk_option(sub)


async def answer_to(fd: FakeDiscord, payload: dict[str, Any]) -> str:
    h: InteractionHandle = await fd.inject_interaction(payload)
    await h.wait_for(lambda x: x.callbacks, timeout=10)
    [cb] = h.callbacks
    assert cb["type"] == 4 and cb["data"]["flags"] & EPHEMERAL, cb
    return str(cb["data"]["content"])


async def test_synced_commands_carry_valid_chinese_localizations(rig: Rig) -> None:
    await rig.start_bot(SYNC_COMMANDS="always")
    fd = rig.discord
    commands = {(c["name"], c.get("type", 1)): c for c in fd.global_commands}
    assert {("imagine", 1), ("edit", 1), ("quota", 1), ("Edit image", 3)} <= set(commands)

    seen = 0
    for command in commands.values():
        menu = command.get("type", 1) != 1
        for kind, item in walk(command):
            seen += 1
            names = item.get("name_localizations") or {}
            if kind == "choice":
                if UNLOCALIZED_CHOICES.match(item["name"]):
                    continue
                assert ZH in names, f"choice {item['name']!r} has no zh-CN name"
                assert 1 <= len(names[ZH]) <= 100
                continue
            assert ZH in names, f"{kind} {item['name']!r} has no zh-CN name"
            local = names[ZH]
            if menu:
                assert 1 <= len(local) <= 32 and not local.isspace()
            else:
                assert NAME_RULE.match(local) and local == local.lower(), f"{local!r} breaks Discord's rule"
                assert "description_localizations" in item and ZH in item["description_localizations"], item
                assert 1 <= len(item["description_localizations"][ZH]) <= 100
            # Only the languages there are catalogs for: nothing for English or Taiwanese Chinese.
            assert set(names) == {ZH}, names

    assert seen > 60  # every option of /imagine, /edit and the /quota subcommands was looked at
    imagine = commands[("imagine", 1)]
    assert imagine["name_localizations"] == {ZH: "画图"}
    assert imagine["description_localizations"] == {ZH: "根据文字提示生成图片"}
    quota = commands[("quota", 1)]
    me = next(o for o in quota["options"] if o["name"] == "me")
    assert me["name_localizations"] == {ZH: "我的"}
    assert commands[("Edit image", 3)]["name_localizations"] == {ZH: "编辑图片"}
    quality = next(o for o in imagine["options"] if o["name"] == "quality")
    assert {c["value"]: c["name_localizations"][ZH] for c in quality["choices"]}["high"] == "高"


async def test_quota_me_and_a_refusal_follow_the_users_language(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord

    chinese = await answer_to(fd, fd.slash("quota", subcommand="me", user="alice", locale=ZH))
    lines = chinese.splitlines()
    assert lines[0] == "**你在本服务器的图片用量**", chinese
    assert lines[1].startswith("**今天**：已用 0 张，剩余 **25** 张（上限 25，机器人默认值）· <t:"), chinese
    assert lines[2].startswith("**本月**：已用 0 张，剩余 **300** 张（上限 300，机器人默认值）· <t:"), chinese
    assert lines[-1] == "-# 每日和每月按服务器时区（UTC）计算。"
    assert re.search(r"<t:\d+:R>重置$", lines[1])  # Discord timestamps stay as they are

    english = await answer_to(fd, fd.slash("quota", subcommand="me", user="alice", locale="en-GB"))
    assert english.startswith("**Your images on this server**\n**Today**: 0 used, **25** remaining"), english

    refused = await answer_to(fd, fd.slash("imagine", {"prompt": "   "}, user="bob", locale=ZH))
    assert refused == "请在 `prompt` 中描述你想要的图片。"
    refused = await answer_to(fd, fd.slash("imagine", {"prompt": "   "}, user="bob"))
    assert refused == "Please describe the image you want in `prompt`."

    # A language without a catalog falls back to the server's language, then to English.
    payload = fd.slash("imagine", {"prompt": " "}, user="bob", locale="fr")
    payload["guild_locale"] = ZH
    assert await answer_to(fd, payload) == "请在 `prompt` 中描述你想要的图片。"
    payload = fd.slash("imagine", {"prompt": " "}, user="bob", locale="zh-TW")
    assert await answer_to(fd, payload) == "Please describe the image you want in `prompt`."
