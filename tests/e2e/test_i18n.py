"""End to end: languages. The real bot syncs zh-CN localizations for every command, and answers a zh-CN
user in Chinese (``/quota me``, the empty-prompt refusal of ``/imagine``); others read English.

The fake Discord validates the synced commands against Discord's schema (lengths, counts) at the end of
every test; the naming rule for localized names is checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot.demo.discord import FakeDiscord, InteractionHandle
from tests.conftest import Rig
from tests.helpers.e2e import EPHEMERAL, db

ZH = "zh-CN"
# Discord's rule for CHAT_INPUT command and option names; \w is Unicode-aware (letters and digits of
# every script, Chinese included).
NAME_RULE = re.compile(r"^[-_\w]{1,32}$")
# Choices that stay as they are in every language: sizes such as "16:9 (1536x864)" and format names.
UNLOCALIZED_CHOICES = re.compile(r"^(\d+:\d+ \(\d+x\d+\)|PNG|JPEG|WEBP|GIF|SVG)$")


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


@pytest.mark.parametrize(
    "models",
    [
        ("gpt-image-2", None),
        # the newer controls, a model option and /quota models: every one of them localized too
        ("gpt-image-2.5-sunburst", "gpt-image-2,gpt-image-2.6-flare"),
    ],
)
async def test_synced_commands_carry_valid_chinese_localizations(rig: Rig, models: tuple[str, str | None]) -> None:
    await rig.start_bot(SYNC_COMMANDS="always", IMAGE_MODEL=models[0], IMAGE_MODELS=models[1])
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


# --- phase 2: everything a zh-CN user sees ------------------------------------------------------------


def _zh(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload from a user whose Discord client is in Simplified Chinese (buttons and modals too)."""
    payload["locale"] = ZH
    return payload


async def _ephemeral(fd: FakeDiscord, payload: dict[str, Any]) -> str:
    """The private answer to an interaction: a direct reply, or a follow-up after a deferral."""
    h = await fd.inject_interaction(payload)
    await h.wait_for(lambda x: (x.callbacks and x.callbacks[0]["type"] == 4) or x.followups, timeout=10)
    if h.followups:
        [note] = h.followups
        assert note["flags"] & EPHEMERAL
        return str(note["content"])
    [cb] = h.callbacks
    assert cb["data"]["flags"] & EPHEMERAL, cb
    return str(cb["data"]["content"])


async def test_imagine_progress_result_buttons_and_modal_in_chinese(rig: Rig) -> None:
    from tests.helpers.e2e import buttons, has_result

    rig.images.delay_between_events = 0.15  # partial frames show up as progress
    await rig.start_bot()
    fd = rig.discord

    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "一只猫", "quality": "high"}, locale=ZH))
    await h.wait_for(has_result, timeout=20)
    progress = [m["content"] for m in h.original_history if "<t:" in (m.get("content") or "")]
    assert any(re.match(r"^🎨 \*\*生成中…\*\* 开始于<t:\d+:R> · 第 1/2 帧\n> 一只猫$", c) for c in progress), progress
    running = [m for m in h.original_history if m.get("components") and "取消" in buttons(m)]
    assert running, "the progress message had no Cancel button labelled in Chinese"

    result = h.msg
    assert re.fullmatch(r"✅ 完成，用时 \d+ 秒", result["content"]), result["content"]
    embed = result["embeds"][0]
    assert embed["title"] == "生成的图片"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert {"模型", "尺寸", "质量", "格式"} <= set(fields) and fields["质量"] == "高", fields
    assert re.fullmatch(r"由 Alice 请求 · 任务 #\d+", embed["footer"]["text"]), embed["footer"]
    labels = buttons(result)
    assert set(labels) == {"重新生成", "编辑", "删除"}

    # Someone else's Delete: refused in the clicker's language (an English reader gets English).
    chinese = await _ephemeral(fd, _zh(fd.button(labels["删除"], result, user="bob")))
    assert chinese == "只有请求这张图片的人，或拥有「管理消息」权限的管理员，才能删除它。"
    english = await _ephemeral(fd, fd.button(labels["删除"], result, user="bob"))
    assert english == "Only the person who asked for this image, or a moderator with Manage Messages, can delete it."

    # Edit opens a modal worded for whoever clicked.
    opened = await fd.inject_interaction(_zh(fd.button(labels["编辑"], result)))
    await opened.wait_for(lambda x: x.modal is not None, timeout=5)
    assert opened.modal is not None
    text_input = opened.modal["components"][0]["components"][0]
    assert opened.modal["title"] == "编辑图片"
    assert text_input["label"] == "要修改什么？" and text_input["placeholder"] == "改成夜晚"
    opened_en = await fd.inject_interaction(fd.button(labels["编辑"], result, user="bob"))
    await opened_en.wait_for(lambda x: x.modal is not None, timeout=5)
    assert opened_en.modal is not None and opened_en.modal["title"] == "Edit image"
    assert opened_en.modal["components"][0]["components"][0]["label"] == "What should change?"


async def test_refusals_and_moderator_answers_in_chinese(rig: Rig) -> None:
    await rig.start_bot(DEFAULT_DAILY_LIMIT="0")
    fd = rig.discord

    bad = await _ephemeral(fd, fd.slash("imagine", {"prompt": "a logo", "quality": "ultra"}, locale=ZH))
    assert bad.startswith("gpt-image-2 不支持质量 `ultra`；请从 ") and bad.endswith(" 中选择。"), bad
    jpeg = {"prompt": "a logo", "background": "transparent", "format": "jpeg"}
    assert await _ephemeral(fd, fd.slash("imagine", jpeg, locale=ZH)) == (
        "JPEG 不支持透明：透明背景请选择 `png` 或 `webp`。"
    )
    blocked = await _ephemeral(fd, fd.slash("imagine", {"prompt": "a cat"}, locale=ZH))
    assert blocked == "你在本服务器上的图片生成功能已被关闭。"
    assert await _ephemeral(fd, fd.slash("imagine", {"prompt": "a cat"})) == (
        "Image generation is turned off for you on this server."
    )

    # A member using a moderator command, and a moderator's own answers and embed.
    denied = await _ephemeral(fd, fd.slash("quota", {"user": fd.world.user("bob")}, subcommand="show", locale=ZH))
    assert "管理服务器" in denied and "Manage Server" not in denied, denied
    h = await fd.inject_interaction(
        fd.slash("quota", {"user": fd.world.user("bob")}, subcommand="show", user="mod", locale=ZH)
    )
    await h.wait_for(lambda x: x.callbacks, timeout=10)
    embed = h.callbacks[0]["data"]["embeds"][0]
    assert embed["title"] == "Bob 的图片配额"
    assert [f["name"] for f in embed["fields"]] == ["最近的任务"] and embed["fields"][0]["value"] == "暂无。"
    rules = await _ephemeral(fd, fd.slash("quota", group="rule", subcommand="list", user="mod", locale=ZH))
    assert rules == "本服务器还没有提示词规则。可用 `/quota rule add` 添加。"


async def test_reply_to_edit_in_a_chinese_server_answers_in_chinese(rig: Rig) -> None:
    from tests.e2e.test_edit import encode, pattern, wait_answer

    rig.discord.world.guilds[rig.discord.guild_id].locale = ZH  # the server's preferred_locale
    await rig.start_bot(DEFAULT_DAILY_LIMIT="0")
    fd = rig.discord
    mention = f"<@{fd.bot_id}>"
    photo = fd.create_user_message("bob", "", [fd.add_attachment(encode(pattern(32, 32)), "ok.png", "image/png")])
    fake = fd.create_user_message("bob", "", [fd.add_attachment(b"not a png", "fake.png", "image/png")])
    cases = [
        (photo, mention, "要改什么？请再回复一次并附上说明，例如 *改成夜晚*。"),
        (photo, f"{mention} 改成夜晚", "你在本服务器上的图片生成功能已被关闭。"),
        (fake, f"{mention} 改成夜晚", "你在本服务器上的图片生成功能已被关闭。"),  # refused before downloading
    ]
    for target, text, expected in cases:
        ask = await fd.inject_message(fd.reply("alice", text, target, mention_bot=True))
        answer = await wait_answer(fd, ask, lambda m: m["content"] != "🎨 正在准备图片…")
        assert answer["content"] == expected
    hint = await fd.inject_message(fd.create_user_message("alice", f"{mention} 你好", mention_bot=True))
    answer = await wait_answer(fd, hint, lambda m: True)
    assert answer["content"].startswith("要编辑图片，请回复带有该图片的消息")
    assert rig.images.requests == []

    # An interaction follows its user's language first: an English client in this server reads English.
    english = await _ephemeral(fd, fd.slash("imagine", {"prompt": "a cat"}))
    assert english == "Image generation is turned off for you on this server."
    # ...and a user whose language has no catalog reads the server's.
    french = await _ephemeral(fd, fd.slash("imagine", {"prompt": "a cat"}, locale="fr"))
    assert french == "你在本服务器上的图片生成功能已被关闭。"

    # With quota, the file is downloaded after the reservation and refused in the server's language.
    await rig.restart_bot(DEFAULT_DAILY_LIMIT=None)
    ask = await fd.inject_message(fd.reply("alice", f"{mention} 改成夜晚", fake, mention_bot=True))
    answer = await wait_answer(fd, ask, lambda m: m["content"] != "🎨 正在准备图片…")
    assert answer["content"] == "❌ 图片 `fake.png` 不是机器人能读取的图片。"
    assert rig.images.requests == []


async def test_the_bot_wide_budget_refuses_privately_in_the_readers_language(rig: Rig) -> None:
    await rig.start_bot(BOT_MONTHLY_BUDGET_USD="0")  # the operator stopped all spending
    fd = rig.discord
    chinese = await _ephemeral(fd, fd.slash("imagine", {"prompt": "一只猫"}, locale=ZH))
    assert chinese.startswith("本机器人本月在所有服务器的图片预算已用完，将于<t:"), chinese
    english = await _ephemeral(fd, fd.slash("imagine", {"prompt": "a cat"}))
    assert english.startswith("This bot has used its image budget for this month, in all its servers."), english
    assert "$" not in english and "0.00" not in english  # the operator's figure is not shown to members
    assert rig.images.requests == [] and db(rig, "SELECT id FROM jobs") == []
