"""End to end: who pays for a server's images. The real bot process against the fake Discord (whose
application is private unless a test turns ``world.bot_public`` on) and the fake Images API.

* public application: a server neither listed nor approved is refused privately, with no API call and no
  job row; a server in ``ALLOWED_GUILD_IDS`` works; the owner (or a team admin/developer) approves at run time,
  anyone else is refused;
* private application: every server works;
* a server's own key: checked before it is stored (a wrong key stores nothing), used for that server's jobs
  (its own fake API sees it, the operator's sees nothing), never in the log, the database file or any message;
  its spend is the server's (the bot-wide budget, here 0, does not stop it); removing it falls back.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from PIL import Image

from bot.demo.discord import FakeDiscord, InteractionHandle
from bot.demo.discord.constants import OWNER_ID
from bot.demo.discord.world import FakeUser
from bot.demo.images import FakeImagesAPI
from tests.conftest import Rig
from tests.helpers.e2e import EPHEMERAL, db, has_result, job_rows, poll

SERVER_KEY = "sk-server-own-key-3f9d2a7c51e84b06WXYZ"
WRONG_KEY = "sk-server-wrong-key-000000000000QQQQ"
NOT_COVERED = "isn't set up to make images with this bot"


def private_text(h: InteractionHandle) -> str:
    """The text of an interaction's private answer (a message, or a follow-up after a private deferral)."""
    for cb in h.callbacks:
        if cb["type"] == 4:
            assert cb["data"]["flags"] & EPHEMERAL, cb
            return str(cb["data"].get("content") or "")
    for msg in h.followups:
        assert msg.get("flags", 0) & EPHEMERAL, msg
        return str(msg.get("content") or "")
    return ""


async def ask(fd: FakeDiscord, payload: dict[str, Any], *, modal: bool = False) -> InteractionHandle:
    h = await fd.inject_interaction(payload)
    if modal:
        await h.wait_for(lambda x: x.modal is not None or private_text(x), timeout=10)
    else:
        await h.wait_for(lambda x: bool(private_text(x)) or has_result(x), timeout=20)
    return h


def generations(api: FakeImagesAPI) -> int:
    return len([r for r in api.requests if r.path.endswith("/images/generations")])


def add_owner(fd: FakeDiscord) -> FakeUser:
    """The application's owner, as a member of the servers (the fake's owner shares none by default)."""
    owner = FakeUser(OWNER_ID, "owner", "Owner")
    fd.world.users["owner"] = owner
    return owner


async def test_public_app_refuses_an_unlisted_server_without_api_call_and_serves_a_listed_one(rig: Rig) -> None:
    fd = rig.discord
    fd.world.bot_public = True
    listed = fd.add_guild("Listed")
    await rig.start_bot(ALLOWED_GUILD_IDS=str(listed.id))

    h = await ask(fd, fd.slash("imagine", {"prompt": "a cat"}))
    # Without SERVER_KEY_SECRET a server cannot bring a key, so the answer offers only the operator's approval.
    assert NOT_COVERED in private_text(h) and "approve this server" in private_text(h)
    assert "/apikey set" not in private_text(h)
    assert generations(rig.images) == 0 and job_rows(rig) == []  # no API call, no reservation

    ok = await ask(fd, fd.slash("imagine", {"prompt": "a cat"}, channel_id=listed.channel_ids[0]))
    assert has_result(ok) and generations(rig.images) == 1
    await poll(lambda: [j["status"] for j in job_rows(rig)] == ["done"])
    [job] = job_rows(rig)
    assert job["guild_id"] == listed.id and job["payer"] == "operator" and job["status"] == "done"


async def test_private_app_every_server_works_as_before(rig: Rig) -> None:
    fd = rig.discord
    other = fd.add_guild("Other")
    await rig.start_bot()
    for channel in (fd.channel_id, other.channel_ids[0]):
        h = await ask(fd, fd.slash("imagine", {"prompt": "a dog"}, channel_id=channel))
        assert has_result(h), h
    assert [j["payer"] for j in job_rows(rig)] == ["operator", "operator"]


async def test_the_owner_approves_at_run_time_and_nobody_else_can(rig: Rig) -> None:
    fd = rig.discord
    fd.world.bot_public = True
    owner = add_owner(fd)
    await rig.start_bot()

    refused = await ask(fd, fd.slash("imagine", {"prompt": "before"}))
    assert NOT_COVERED in private_text(refused)

    # A server manager (Manage Server) is not the application's owner.
    denied = await ask(fd, fd.slash("operator", {}, subcommand="approve", user="mod"))
    assert "Only the bot's owner" in private_text(denied)
    assert db(rig, "SELECT * FROM approved_guilds") == [] and db(rig, "SELECT * FROM operator_audit") == []

    done = await ask(fd, fd.slash("operator", {}, subcommand="approve", user=owner))
    assert "Approved" in private_text(done)
    [row] = db(rig, "SELECT guild_id, approved_by FROM approved_guilds")
    assert (row["guild_id"], row["approved_by"]) == (fd.guild_id, owner.id)
    [audit] = db(rig, "SELECT actor_id, action, guild_id FROM operator_audit")
    assert tuple(audit) == (owner.id, "approve", fd.guild_id)

    after = await ask(fd, fd.slash("imagine", {"prompt": "after"}))
    assert has_result(after) and generations(rig.images) == 1

    listing = await ask(fd, fd.slash("operator", {}, subcommand="list", user=owner))
    assert str(fd.guild_id) in private_text(listing)
    await ask(fd, fd.slash("operator", {}, subcommand="revoke", user=owner))
    again = await ask(fd, fd.slash("imagine", {"prompt": "revoked"}))
    assert NOT_COVERED in private_text(again) and generations(rig.images) == 1


async def test_team_admins_and_developers_are_owners_read_only_members_are_not(rig: Rig) -> None:
    fd = rig.discord
    fd.world.bot_public = True
    fd.world.team = {fd.users["bob"].id: "developer", fd.users["mod"].id: "read_only"}
    await rig.start_bot()
    denied = await ask(fd, fd.slash("operator", {}, subcommand="approve", user="mod"))
    assert "Only the bot's owner" in private_text(denied)
    done = await ask(fd, fd.slash("operator", {}, subcommand="approve", user="bob"))
    assert "Approved" in private_text(done)
    assert [r["approved_by"] for r in db(rig, "SELECT approved_by FROM approved_guilds")] == [fd.users["bob"].id]


async def set_key(fd: FakeDiscord, key: str, base_url: str, user: str = "mod") -> InteractionHandle:
    """/apikey set, then the modal submitted with ``key`` and ``base_url``; returns the submission's handle."""
    opened = await ask(fd, fd.slash("apikey", {}, subcommand="set", user=user), modal=True)
    assert opened.modal is not None, private_text(opened)
    inputs = [row["components"][0] for row in opened.modal["components"]]
    assert [i.get("required", True) for i in inputs] == [True, False]  # the base URL is optional
    fields = {inputs[0]["custom_id"]: key, inputs[1]["custom_id"]: base_url}
    h = await fd.inject_interaction(fd.modal_submit(opened.modal["custom_id"], fields, user=user))
    await h.wait_for(lambda x: bool(private_text(x)), timeout=20)
    return h


def leaked(rig: Rig, secret: str) -> list[str]:
    """Where ``secret`` can be found: the database files' bytes, the bot's log, what the bot sent Discord."""
    found = []
    for path in Path(rig.db_path).parent.glob(Path(rig.db_path).name + "*"):  # the file, -wal, -shm
        if secret.encode() in path.read_bytes():
            found.append(str(path))
    if secret in rig.log_text():
        found.append("log")
    for r in rig.discord.requests:
        if secret in json.dumps(r.json, default=str) or any(secret.encode() in f.data for f in r.files):
            found.append(f"{r.method} {r.path}")
    return found


async def test_a_server_brings_its_own_key(rig: Rig) -> None:
    fd = rig.discord
    fd.world.bot_public = True
    own = FakeImagesAPI(api_key=SERVER_KEY)
    own_base = await own.start()
    try:
        await rig.start_bot(
            SERVER_KEY_SECRET=Fernet.generate_key().decode(),
            ALLOW_PRIVATE_BASE_URLS="true",  # the fake serves on 127.0.0.1
            BOT_MONTHLY_BUDGET_USD="0",  # the operator pays for nothing more this month
        )
        # A member without Manage Server cannot set it.
        member = await ask(fd, fd.slash("apikey", {}, subcommand="set", user="alice"), modal=True)
        assert member.modal is None and private_text(member)

        # A wrong key is refused by its API; nothing is stored.
        wrong = await set_key(fd, WRONG_KEY, own_base)
        assert "refused the key" in private_text(wrong)
        assert db(rig, "SELECT * FROM guild_api_keys") == []

        saved = await set_key(fd, SERVER_KEY, own_base)
        text = private_text(saved)
        assert "Saved" in text and SERVER_KEY[-4:] in text and SERVER_KEY[:-4] not in text
        [row] = db(rig, "SELECT key_last4, base_url, set_by FROM guild_api_keys")
        assert tuple(row) == (SERVER_KEY[-4:], own_base, fd.users["mod"].id)

        operator_calls = len(rig.images.requests)
        h = await ask(fd, fd.slash("imagine", {"prompt": "a fox"}))
        assert has_result(h), private_text(h)
        gens = [r for r in own.requests if r.path.endswith("/images/generations")]
        assert gens and all(r.headers.get("Authorization") == f"Bearer {SERVER_KEY}" for r in gens)
        assert len(rig.images.requests) == operator_calls  # the operator's API saw nothing
        await poll(lambda: [j["status"] for j in job_rows(rig)] == ["done"])
        [job] = job_rows(rig)
        assert job["payer"] == "server" and job["status"] == "done" and job["cost_actual"] > 0

        status = await ask(fd, fd.slash("apikey", {}, subcommand="status", user="mod"))
        assert SERVER_KEY[-4:] in private_text(status) and SERVER_KEY[:-4] not in private_text(status)

        # Removing it falls back to what the operator configured: this public app has not approved the server.
        removed = await ask(fd, fd.slash("apikey", {}, subcommand="remove", user="mod"))
        assert "refused until" in private_text(removed)
        assert db(rig, "SELECT * FROM guild_api_keys") == []
        refused = await ask(fd, fd.slash("imagine", {"prompt": "a fox again"}))
        assert NOT_COVERED in private_text(refused) and len(job_rows(rig)) == 1
        assert [r["action"] for r in db(rig, "SELECT action FROM operator_audit ORDER BY id")] == [
            "key_set",
            "key_removed",
        ]
        await rig.stop_bot()
        assert leaked(rig, SERVER_KEY) == [] and leaked(rig, WRONG_KEY) == []
    finally:
        await own.stop()


async def test_a_server_key_with_the_operators_key_off_and_the_budget_untouched(rig: Rig) -> None:
    fd = rig.discord
    own = FakeImagesAPI(api_key=SERVER_KEY)
    own_base = await own.start()
    try:
        await rig.start_bot(
            SERVER_KEY_SECRET=Fernet.generate_key().decode(),
            ALLOW_PRIVATE_BASE_URLS="true",
            OPERATOR_KEY_SERVERS="none",  # even a private application pays for no server
            BOT_MONTHLY_BUDGET_USD="5",
        )
        refused = await ask(fd, fd.slash("imagine", {"prompt": "no key yet"}))
        assert NOT_COVERED in private_text(refused) and generations(rig.images) == 0
        await set_key(fd, SERVER_KEY, own_base)
        h = await ask(fd, fd.slash("imagine", {"prompt": "with a key"}))
        assert has_result(h)
        await poll(lambda: [j["status"] for j in job_rows(rig)] == ["done"])
        spent = db(rig, "SELECT COALESCE(SUM(cost_actual), 0) AS s FROM jobs WHERE payer = 'operator'")[0]["s"]
        assert spent == 0 and generations(rig.images) == 0 and generations(own) == 1
        removed = await ask(fd, fd.slash("apikey", {}, subcommand="remove", user="mod"))
        assert "refused until" in private_text(removed)
    finally:
        await own.stop()


async def test_no_secret_no_stored_keys(rig: Rig) -> None:
    fd = rig.discord
    await rig.start_bot()
    h = await ask(fd, fd.slash("apikey", {}, subcommand="set", user="mod"), modal=True)
    assert h.modal is None and "SERVER_KEY_SECRET" in private_text(h)


async def test_a_base_url_inside_the_network_is_refused_unless_allowed(rig: Rig) -> None:
    fd = rig.discord
    await rig.start_bot(SERVER_KEY_SECRET=Fernet.generate_key().decode())
    h = await set_key(fd, SERVER_KEY, "http://127.0.0.1:9/v1")
    assert "public internet" in private_text(h)
    assert db(rig, "SELECT * FROM guild_api_keys") == []


def embed_text(h: InteractionHandle) -> str:
    [cb] = h.callbacks
    data = cb["data"]
    parts = [data.get("content") or ""]
    for embed in data.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


async def command(fd: FakeDiscord, name: str, sub: str, options: dict[str, Any], user: str) -> InteractionHandle:
    h = await fd.inject_interaction(fd.slash(name, options, subcommand=sub, user=user))
    await h.wait_for(lambda x: x.callbacks, timeout=10)
    return h


async def test_tenants_stay_apart(rig: Rig) -> None:
    fd = rig.discord
    second = fd.add_guild("Second")
    await rig.start_bot(BOT_USER_DAILY_LIMIT="5")
    alice = fd.users["alice"]
    h = await ask(fd, fd.slash("imagine", {"prompt": "a lighthouse"}))
    assert has_result(h)
    await poll(lambda: [j["status"] for j in job_rows(rig)] == ["done"])

    # In the second server a moderator sees that server's figures only; alice herself sees her bot-wide count.
    elsewhere = second.channel_ids[0]
    shown = await fd.inject_interaction(
        fd.slash("quota", {"user": alice}, subcommand="show", user="mod", channel_id=elsewhere)
    )
    await shown.wait_for(lambda x: x.callbacks, timeout=10)
    text = embed_text(shown)
    assert "all servers" not in text and "0 used" in text
    me = await fd.inject_interaction(fd.slash("quota", {}, subcommand="me", user="alice", channel_id=elsewhere))
    await me.wait_for(lambda x: x.callbacks, timeout=10)
    [everywhere] = [ln for ln in embed_text(me).splitlines() if "Today in all servers" in ln]
    assert "1 used" in everywhere

    # Refused prompts are counted per member, apart from the moderators' changes.
    added = await fd.inject_interaction(fd.slash("quota", {"text": "bad"}, group="rule", subcommand="add", user="mod"))
    await added.wait_for(lambda x: x.callbacks, timeout=10)
    for user in ("alice", "alice", "alice", "bob"):
        refused = await ask(fd, fd.slash("imagine", {"prompt": "a bad dog"}, user=user))
        assert "moderators don't allow" in private_text(refused), private_text(refused)
    await command(fd, "quota", "set", {"user": fd.users["bob"], "daily": 3}, "mod")
    audit = embed_text(await command(fd, "quota", "audit", {}, "mod"))
    changes, _, refusals = audit.partition("Refused prompts, last 30 days")
    assert "refused" not in changes.lower() and "daily" in changes
    assert f"<@{alice.id}>: 3 refused prompts" in refusals and f"<@{fd.users['bob'].id}>: 1 refused prompt," in refusals


async def test_an_edit_in_an_uncovered_server_is_refused_privately_before_any_api_call(rig: Rig) -> None:
    fd = rig.discord
    fd.world.bot_public = True
    await rig.start_bot()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, "PNG")
    photo = fd.create_user_message("bob", "", [fd.add_attachment(buffer.getvalue(), "red.png", "image/png")])
    menu = await fd.inject_interaction(fd.message_command("Edit image", photo))
    await menu.wait_for(lambda x: x.modal is not None, timeout=5)
    assert menu.modal is not None
    text_input = menu.modal["components"][0]["components"][0]
    sub = await fd.inject_interaction(
        fd.modal_submit(menu.modal["custom_id"], {text_input["custom_id"]: "make it blue"})
    )
    await sub.wait_for(lambda x: bool(private_text(x)), timeout=15)
    assert NOT_COVERED in private_text(sub)
    assert not [r for r in rig.images.requests if "/images/" in r.path] and job_rows(rig) == []
    assert not [m for m in fd.bot_messages() if not (m.get("flags", 0) & EPHEMERAL)]  # nothing public remains
