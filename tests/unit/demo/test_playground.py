"""The playground's pure parts: who sees what, what the page may ask for, the bot's environment, --reset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo.discord.payloads import FLAG_EPHEMERAL
from bot.demo.playground import history
from bot.demo.playground.actions import ActionError, Actions
from bot.demo.playground.botproc import ImageService, bot_env
from bot.demo.playground.cli import build_parser, real_api_from_env
from bot.demo.playground.live import LiveDiscord, visible_to
from bot.demo.playground.server import reset
from bot.messages.i18n import translate

IMAGINE = {
    "name": "imagine",
    "type": 1,
    "description": "Create an image",
    "options": [
        {"type": 3, "name": "prompt", "description": "What to draw", "required": True},
        {"type": 3, "name": "quality", "description": "q", "choices": [{"name": "Low", "value": "low"}]},
        {"type": 4, "name": "count", "description": "n", "min_value": 1, "max_value": 10},
        {"type": 3, "name": "style", "description": "s", "max_length": 5},
    ],
}


@pytest.fixture
async def live() -> AsyncIterator[LiveDiscord]:
    fd = LiveDiscord()
    await fd.start()
    fd.commands[None] = [fd._command_out(None, IMAGINE)]
    try:
        yield fd
    finally:
        await fd.stop()


def test_an_ephemeral_answer_is_seen_by_the_one_who_asked_only() -> None:
    alice = {"id": "1", "flags": FLAG_EPHEMERAL, "interaction_metadata": {"user": {"id": "7"}}}
    assert visible_to(alice, 7) and not visible_to(alice, 8)
    assert visible_to({"id": "2", "flags": 0}, 8)
    assert not visible_to({"id": "3", "flags": FLAG_EPHEMERAL}, 8)  # no owner known: nobody


async def test_changes_are_published_once_each(live: LiveDiscord) -> None:
    events: list[dict[str, Any]] = []
    live.listeners.append(events.append)
    msg = live.create_user_message("alice", "hello")
    live.publish()
    live.publish()
    assert [(e["type"], e.get("message", {}).get("content")) for e in events if e["type"] != "status"] == [
        ("message", "hello")
    ]
    events.clear()
    await live.delete_message(msg)
    live.publish()
    assert [e for e in events if e["type"] == "delete"] == [
        {"type": "delete", "id": msg["id"], "channel_id": msg["channel_id"]}
    ]


async def test_cdn_links_are_made_relative_for_the_page(live: LiveDiscord) -> None:
    att = live.add_attachment(b"\x89PNG....", "a.png")
    assert live.browser_json(att).count('"/cdn/attachments/') == 1
    assert live.base_url not in live.browser_json(att)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"person": "mallory", "name": "imagine", "options": {"prompt": "x"}}, "unknown person"),
        ({"person": "alice", "name": "nope", "options": {}}, "not registered"),
        ({"person": "alice", "name": "imagine", "options": {}}, "prompt is required"),
        ({"person": "alice", "name": "imagine", "options": {"prompt": "x", "quality": "ultra"}}, "choices"),
        (
            {"person": "alice", "name": "imagine", "options": {"prompt": "x", "count": "two"}},
            "count: not a valid value",
        ),
        ({"person": "alice", "name": "imagine", "channel_id": "1", "options": {"prompt": "x"}}, "unknown channel"),
        ({"person": "alice", "name": "imagine", "options": {"prompt": "x", "count": "11"}}, "count: out of range"),
        ({"person": "alice", "name": "imagine", "options": {"prompt": "x", "style": "baroque"}}, "style: too short"),
    ],
)
async def test_slash_commands_are_checked_before_the_bot_sees_them(
    live: LiveDiscord, body: dict[str, Any], reason: str
) -> None:
    body.setdefault("channel_id", str(live.channel_id))
    with pytest.raises(ActionError, match=reason):
        await Actions(live).slash(body)
    assert live.gateway_events_sent == []


async def test_nobody_acts_on_a_private_answer_of_someone_else(live: LiveDiscord) -> None:
    private = live.world.message_payload(
        message_id=live.snowflakes.next(), channel_id=live.channel_id, author="bot", content="only alice",
        flags=FLAG_EPHEMERAL,
    )  # fmt: skip
    private["interaction_metadata"] = {"user": live.world.users["alice"].payload()}
    live._store(private)
    actions = Actions(live)
    with pytest.raises(ActionError, match="unknown message"):
        await actions.send_message(
            {"person": "bob", "channel_id": str(live.channel_id), "content": "hi", "reply_to": private["id"]}
        )
    assert actions.message(private["id"], actions.person("alice")) is private


def test_languages_and_uploads_are_checked(live: LiveDiscord) -> None:
    actions = Actions(live)
    with pytest.raises(ActionError):
        actions.set_locale("alice", "fr")
    actions.set_locale("bob", "zh-CN")
    assert actions.people["bob"].locale == "zh-CN"
    with pytest.raises(ActionError):
        actions.upload(b"", "empty.png", None, live.channel_id)
    att = actions.upload(b"data", "../../etc/passwd", "text/plain", live.channel_id)
    assert "/" not in att["filename"] and att["id"] in actions.uploads


def test_the_bot_process_gets_none_of_the_callers_own_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "the-real-token")
    monkeypatch.setenv("DATABASE_URL", "postgresql://prod/db")
    monkeypatch.setenv("IMAGEBOT_ENV_FILE", "/home/me/.env")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-real")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    service = ImageService("http://127.0.0.1:9/v1", "sk-local", real=False)
    env = bot_env("fake-token", "http://127.0.0.1:1/api/v10", "ws://127.0.0.1:1/gateway", service, tmp_path / "x.db")
    assert env["DISCORD_TOKEN"] == "fake-token"
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path / 'x.db'}"
    assert "IMAGEBOT_ENV_FILE" not in env and "OPENAI_ORG_ID" not in env
    assert env["OPENAI_API_KEY"] == "sk-local" and env["LOG_LEVEL"] == "DEBUG"


def test_a_real_key_in_the_environment_selects_the_real_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert real_api_from_env() is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert real_api_from_env() == ImageService("https://api.openai.com/v1", "sk-real", real=True)


def test_reset_clears_the_one_folder(tmp_path: Path) -> None:
    folder = tmp_path / "pg"
    (folder / "uploads").mkdir(parents=True)
    (folder / "imagebot.db").write_text("x")
    (tmp_path / "keep.txt").write_text("mine")
    reset(folder)
    assert not folder.exists() and (tmp_path / "keep.txt").exists()
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.reset) == ("127.0.0.1", 8090, False)


async def test_the_history_survives_a_restart_without_private_answers(live: LiveDiscord, tmp_path: Path) -> None:
    att = live.add_attachment(b"\x89PNG-bytes", "cat.png")
    shown = live.create_user_message("alice", "my cat", [att])
    private = live.world.message_payload(
        message_id=live.snowflakes.next(), channel_id=live.channel_id, author="bot", content="psst",
        flags=FLAG_EPHEMERAL,
    )  # fmt: skip
    live._store(private)
    assert history.save(live, tmp_path) == 1
    again = LiveDiscord()
    await again.start()
    try:
        assert again.base_url != live.base_url
        assert history.load(again, tmp_path) == 1
        restored = again.messages[int(shown["id"])]
        assert restored["content"] == "my cat" and int(private["id"]) not in again.messages
        url = restored["attachments"][0]["url"]
        assert url.startswith(again.base_url + "/cdn/")
        assert again.cdn_bytes(restored["attachments"][0]) == b"\x89PNG-bytes"
    finally:
        await again.stop()


async def test_a_refused_action_is_explained_in_the_persons_language(live: LiveDiscord) -> None:
    with pytest.raises(ActionError) as caught:
        await Actions(live).slash({"person": "bob", "name": "imagine", "channel_id": str(live.channel_id)})
    assert str(caught.value) == "prompt is required"
    assert translate("zh-CN", caught.value.msgid, **caught.value.params) == "prompt 为必填项"


async def test_commands_for_managers_are_theirs_only(live: LiveDiscord) -> None:
    keys = dict(IMAGINE, name="apikey", default_member_permissions=str(1 << 5))  # Manage Server
    live.commands[None].append(live._command_out(None, keys))
    actions = Actions(live)
    assert actions.may_use("mod", live.commands[None][-1]) and not actions.may_use("alice", live.commands[None][-1])
    assert actions.may_use("alice", live.commands[None][0])
    with pytest.raises(ActionError, match="permissions"):
        await actions.slash(
            {"person": "alice", "name": "apikey", "channel_id": str(live.channel_id), "options": {"prompt": "x"}}
        )
