"""End to end: ``/quota`` against the real bot process, the fake Discord and the fake Images API.

Moderators ("mod" has Manage Server) set limits and budgets; members ("alice" with the Artist role, "bob")
run ``/imagine`` and ``/quota me``. Every answer is checked as Discord recorded it, and the bot's SQLite
file is read directly to prove what changed (and what did not).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from typing import Any

from bot.demo.discord import FakeDiscord, InteractionHandle
from tests.conftest import Rig
from tests.helpers.e2e import EPHEMERAL, db, has_result, poll

MODERATOR_SUBCOMMANDS = ("show", "set", "role", "default", "reset", "budget", "report")


# --- helpers ---------------------------------------------------------------------------------------


async def quota(
    fd: FakeDiscord, sub: str, options: dict[str, Any] | None = None, *, user: str = "mod"
) -> InteractionHandle:
    """Run ``/quota <sub>`` and wait for the bot's answer (a message or a deferral)."""
    h = await fd.inject_interaction(fd.slash("quota", options, subcommand=sub, user=user))
    await h.wait_for(lambda x: x.callbacks, timeout=10)
    return h


def answer(h: InteractionHandle) -> dict[str, Any]:
    """The private answer of an interaction: checks it was ephemeral and had no pings."""
    [cb] = h.callbacks
    assert cb["type"] == 4, cb
    data = cb["data"]
    assert data["flags"] & EPHEMERAL, data
    assert data["allowed_mentions"] == {"parse": []}, data
    return dict(data)


def text_of(h: InteractionHandle) -> str:
    data = answer(h)
    parts = [data.get("content") or ""]
    for embed in data.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


def line(text: str, label: str) -> str:
    """The line of a usage text about ``label`` ("Today", "This month", "Server budget")."""
    [found] = [ln for ln in text.splitlines() if ln.startswith(f"**{label}**")]
    return found


def refusal(h: InteractionHandle) -> dict[str, Any] | None:
    """The private answer of a refused /imagine: the interaction's only response, nothing public."""
    if h.callbacks and h.callbacks[0]["type"] == 4:
        return dict(h.callbacks[0]["data"])
    return None


async def imagine(fd: FakeDiscord, prompt: str, user: str = "alice", **options: Any) -> InteractionHandle:
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": prompt, **options}, user=user))
    await h.wait_for(lambda x: has_result(x) or refusal(x), timeout=20)
    return h


def generations(rig: Rig) -> int:
    return len([r for r in rig.images.requests if r.path.endswith("/images/generations")])


# --- tests -----------------------------------------------------------------------------------------


async def test_daily_limit_of_two_refuses_the_third_imagine_without_an_api_call(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    alice, mod = fd.users["alice"], fd.users["mod"]

    # The synced command: one guild-only /quota group with the fixed subcommands and option names.
    group = next(c for c in fd.global_commands if c["name"] == "quota")
    assert group["contexts"] == [0] or group.get("dm_permission") is False
    subs = {o["name"]: o for o in group["options"]}
    assert set(subs) >= {"me", *MODERATOR_SUBCOMMANDS}
    set_opts = {o["name"]: o for o in subs["set"]["options"]}
    assert [o["name"] for o in subs["set"]["options"]][:3] == ["user", "daily", "monthly"]
    assert set_opts["user"]["type"] == 6 and set_opts["daily"]["type"] == 4 and set_opts["daily"]["min_value"] == -1
    assert set_opts["clear"]["type"] == 5
    assert [o["name"] for o in subs["role"]["options"]][:3] == ["role", "daily", "monthly"]
    assert {o["name"] for o in subs["budget"]["options"]} == {"usd"} and subs["budget"]["options"][0]["type"] == 10

    # Before anything: the bot default, and where it comes from.
    me = text_of(await quota(fd, "me", user="alice"))
    assert "0 used" in line(me, "Today") and "**25** remaining (limit 25" in line(me, "Today")
    assert "bot default" in line(me, "Today") and re.search(r"resets <t:\d+:R>", line(me, "Today"))
    assert "**300** remaining (limit 300" in line(me, "This month")

    # A moderator sets alice's daily limit to 2.
    done = text_of(await quota(fd, "set", {"user": alice, "daily": 2}))
    assert "daily not set → **2**" in done and alice.mention in done
    [audit] = db(rig, "SELECT * FROM audit_log")
    assert (audit["actor_id"], audit["action"], audit["target_id"]) == (mod.id, "set_user_limit", alice.id)
    assert json.loads(audit["details"]) == {"daily": {"old": "inherit", "new": 2}}

    for prompt in ("a red fox", "a blue heron"):
        h = await imagine(fd, prompt)
        assert has_result(h)
    assert generations(rig) == 2
    me = text_of(await quota(fd, "me", user="alice"))
    assert "2 used" in line(me, "Today") and "**0** remaining (limit 2, set for you)" in line(me, "Today")
    assert "2 used" in line(me, "This month") and "**298** remaining (limit 300" in line(me, "This month")

    # The third is refused privately, says the limit and when it resets, and never reaches the API.
    third = await imagine(fd, "a green frog")
    answer = refusal(third)
    assert answer is not None and answer["flags"] & EPHEMERAL
    assert "limit of 2 images today" in answer["content"]
    assert re.search(r"resets <t:\d+:R>", answer["content"])
    assert third.callback_types == [4] and third.followups == []  # no public "thinking…" ever appeared
    await asyncio.sleep(0.2)
    assert generations(rig) == 2
    assert len(db(rig, "SELECT id FROM jobs")) == 2

    # /quota show: limits with their sources, usage and the recent jobs.
    shown = text_of(await quota(fd, "show", {"user": alice}))
    assert "**0** remaining (limit 2, set for this user)" in shown and "a blue heron" in shown and "done" in shown

    # /quota reset clears today's usage (audited); alice can make images again.
    reset = text_of(await quota(fd, "reset", {"user": alice}))
    assert "2 images of today" in reset
    assert db(rig, "SELECT action FROM audit_log ORDER BY id DESC LIMIT 1")[0]["action"] == "reset_user"
    me = text_of(await quota(fd, "me", user="alice"))
    assert "0 used" in line(me, "Today") and "**2** remaining (limit 2" in line(me, "Today")
    assert has_result(await imagine(fd, "a green frog"))
    assert generations(rig) == 3

    # clear:True removes alice's own limit: the bot default applies again.
    cleared = text_of(await quota(fd, "set", {"user": alice, "clear": True}))
    assert "daily 2 → **not set**" in cleared
    assert db(rig, "SELECT * FROM quota_limits") == []
    assert "bot default" in line(text_of(await quota(fd, "me", user="alice")), "Today")


async def test_non_moderators_are_refused_and_nothing_changes(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    alice, bob, artist = fd.users["alice"], fd.users["bob"], fd.roles["artist"]
    attempts: list[tuple[str, dict[str, Any] | None]] = [
        ("set", {"user": bob, "daily": 1000, "monthly": -1}),
        ("role", {"role": artist, "daily": -1}),
        ("default", {"daily": 0}),
        ("reset", {"user": bob}),
        ("budget", {"usd": 1000.0}),
        ("report", None),
        ("show", {"user": alice}),
        ("timezone", {"tz": "Asia/Tokyo"}),
        ("managerrole", {"role": artist}),
    ]
    for sub, options in attempts:
        h = await quota(fd, sub, options, user="bob")
        text = text_of(h)
        assert "Only" in text and "Manage Server" in text and "Nothing was changed" in text, (sub, text)
        assert not answer(h).get("attachments"), sub
    for table in ("quota_limits", "guild_settings", "quota_resets", "audit_log"):
        assert db(rig, f"SELECT * FROM {table}") == [], table
    me = text_of(await quota(fd, "me", user="bob"))
    assert "**25** remaining (limit 25, bot default)" in line(me, "Today")

    # A server can name a manager role: its members (alice is an Artist) may then manage quotas...
    text_of(await quota(fd, "managerrole", {"role": artist}))
    done = text_of(await quota(fd, "set", {"user": bob, "daily": 5}, user="alice"))
    assert "daily not set → **5**" in done
    assert "**5** remaining (limit 5, set for you)" in line(text_of(await quota(fd, "me", user="bob")), "Today")
    # ...but not decide who is a manager, and members without the role are still refused, naming it.
    refused = text_of(await quota(fd, "managerrole", {"clear": True}, user="alice"))
    assert "Manage Server" in refused
    refused = text_of(await quota(fd, "set", {"user": bob, "daily": 50}, user="bob"))
    assert artist.mention in refused
    rows = db(rig, "SELECT target_id, max_images, updated_by FROM quota_limits")
    assert [tuple(r) for r in rows] == [(bob.id, 5, alice.id)]
    assert [r["action"] for r in db(rig, "SELECT action FROM audit_log ORDER BY id")] == [
        "set_manager_role",
        "set_user_limit",
    ]


async def test_report_attaches_a_csv_that_matches_the_ledger(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    alice, bob = fd.users["alice"], fd.users["bob"]
    text_of(await quota(fd, "budget", {"usd": 5}))

    assert has_result(await imagine(fd, '=HYPERLINK("http://x") a lighthouse'))  # a formula-looking prompt
    assert has_result(await imagine(fd, "two owls", user="bob", count=2))
    rig.images.moderation_block_next()
    blocked = await fd.inject_interaction(fd.slash("imagine", {"prompt": "refused by safety"}, user="bob"))
    await blocked.wait_for(lambda x: "declined" in ((x.original or {}).get("content") or ""), timeout=20)
    await poll(lambda: all(r["status"] != "running" for r in db(rig, "SELECT status FROM jobs")))

    h = await quota(fd, "report")
    assert h.callbacks[0]["data"]["flags"] & EPHEMERAL  # answered (or deferred) privately
    await h.wait_for(lambda x: x.original and x.original["attachments"], timeout=10)
    message = h.msg
    assert message["flags"] & EPHEMERAL
    [attachment] = [a for a in message["attachments"] if a["filename"].endswith(".csv")]
    assert attachment["filename"].startswith("imagebot-ledger-") and attachment["filename"].endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(fd.cdn_bytes(attachment).decode("utf-8"))))

    jobs = db(rig, "SELECT * FROM jobs ORDER BY id")
    assert len(jobs) == 3 and len(rows) == 3
    for row, job in zip(rows, jobs, strict=True):
        assert int(row["id"]) == job["id"] and int(row["user_id"]) == job["user_id"]
        assert row["status"] == job["status"] and int(row["images_done"]) == job["images_done"]
        assert int(row["images_reserved"]) == job["images_reserved"]
        assert float(row["cost_actual"]) == job["cost_actual"] and float(row["cost_estimate"]) == job["cost_estimate"]
        assert int(row["output_tokens"]) == job["output_tokens"] and row["created_at"] == job["created_at"]
    assert [r["status"] for r in rows] == ["done", "done", "blocked"]
    assert rows[0]["prompt"].startswith("'=HYPERLINK")  # defused for spreadsheets
    assert rows[1]["prompt"] == "two owls"

    # The embed: totals and per-user lines agree with the ledger.
    [embed] = message["embeds"]
    spent = {uid: sum(j["cost_actual"] for j in jobs if j["user_id"] == uid) for uid in (alice.id, bob.id)}
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Total"] == f"3 images · 3 jobs · ${spent[alice.id] + spent[bob.id]:.2f}"
    assert f"{bob.mention}: 2 images · 2 jobs · ${spent[bob.id]:.2f}" in embed["description"]
    assert f"{alice.mention}: 1 image · 1 job · ${spent[alice.id]:.2f}" in embed["description"]
    assert fields["Budget"].startswith(f"${spent[alice.id] + spent[bob.id]:.2f} of $5.00")


async def test_crash_mid_job_refunds_the_reservation_after_a_restart(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    rig.images.hang_next(after_partials=1)  # the first preview arrives, then the stream stalls
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a slow sunrise", "count": 2}))
    await h.wait_for(lambda x: "frame 1/2" in ((x.original or {}).get("content") or ""), timeout=20)
    [job] = db(rig, "SELECT * FROM jobs")
    assert job["status"] == "running" and job["images_reserved"] == 2
    me = text_of(await quota(fd, "me", user="alice"))
    assert "2 used" in line(me, "Today")  # in flight: reserved images count

    assert await rig.kill_bot() == -9  # SIGKILL: no chance to refund on the way out
    assert db(rig, "SELECT status FROM jobs")[0]["status"] == "running"
    await rig.restart_bot()

    [job] = db(rig, "SELECT * FROM jobs")
    assert job["status"] == "crashed" and job["finished_at"] is not None
    assert job["error"] == "interrupted: bot restarted"
    assert f"refunded 1 reservation(s) left by an earlier crash: jobs [{job['id']}]" in rig.log_text()
    me = text_of(await quota(fd, "me", user="alice"))
    assert "0 used" in line(me, "Today") and "**25** remaining (limit 25" in line(me, "Today")
    assert "0 used" in line(me, "This month")
    shown = text_of(await quota(fd, "show", {"user": fd.users["alice"]}))
    assert "crashed" in shown and "refunded" in shown


async def test_role_and_server_defaults_budget_timezone_and_audit(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    artist = fd.roles["artist"]

    assert "daily not set → **10**" in text_of(await quota(fd, "default", {"daily": 10}))
    assert "daily not set → **unlimited**" in text_of(await quota(fd, "role", {"role": artist, "daily": -1}))
    alice_today = line(text_of(await quota(fd, "me", user="alice")), "Today")  # alice is an Artist
    assert "no limit (from role " + artist.mention in alice_today
    bob_today = line(text_of(await quota(fd, "me", user="bob")), "Today")
    assert "**10** remaining (limit 10, server default)" in bob_today

    # Nothing given: explained, nothing changed. Out of range: refused.
    assert "Nothing to change" in text_of(await quota(fd, "default"))
    bad = await quota(fd, "set", {"user": fd.users["bob"], "daily": -5})
    assert "A limit is -1 (unlimited), 0 (blocked) or a number of images up to 1,000,000" in text_of(bad)
    assert len(db(rig, "SELECT * FROM audit_log")) == 2

    # Time zone: unknown names refused, autocomplete offers IANA names, days then follow it.
    assert "isn't a time zone" in text_of(await quota(fd, "timezone", {"tz": "Mars/Olympus_Mons"}))
    payload = fd.slash("quota", {"tz": "berl"}, subcommand="timezone")
    payload["type"] = 4  # APPLICATION_COMMAND_AUTOCOMPLETE
    payload["data"]["options"][0]["options"][0]["focused"] = True
    auto = await fd.inject_interaction(payload)
    await auto.wait_for(lambda x: x.callbacks, timeout=10)
    assert auto.callbacks[0]["type"] == 8
    assert {"name": "Europe/Berlin", "value": "Europe/Berlin"} in auto.callbacks[0]["data"]["choices"]
    assert "**Europe/Berlin**" in text_of(await quota(fd, "timezone", {"tz": "Europe/Berlin"}))
    assert "(Europe/Berlin)" in text_of(await quota(fd, "me", user="bob"))

    # A budget of $0 stops everyone (no API call); -1 removes it.
    text = text_of(await quota(fd, "budget", {"usd": 0.0}))
    assert "$0.00" in text and "nobody can make images" in text
    assert "$0.00 of $0.00" in line(text_of(await quota(fd, "me", user="alice")), "Server budget")
    refused = await imagine(fd, "a tiny boat")
    assert "monthly image budget" in (refusal(refused) or {})["content"]
    assert rig.images.requests == []
    assert "Budget removed" in text_of(await quota(fd, "budget", {"usd": -1.0}))
    assert db(rig, "SELECT budget_usd FROM guild_settings")[0]["budget_usd"] is None
    assert "no monthly budget" in text_of(await quota(fd, "budget"))

    # Every change is in the audit log, newest first, with who made it.
    audit = text_of(await quota(fd, "audit"))
    actions = re.findall(r"`(\w+)`", audit)
    assert actions == [
        "set_budget",
        "set_budget",
        "set_timezone",
        "set_role_limit",
        "set_default_limit",
    ]
    assert fd.users["mod"].mention in audit and "$0.00 → **no budget**" in audit


async def test_the_bot_wide_daily_cap_counts_a_member_in_every_server(rig: Rig) -> None:
    # BOT_USER_DAILY_LIMIT on the default SQLite store, one process, two servers.
    fd = rig.discord
    second = fd.add_guild("Second Server")
    await rig.start_bot(BOT_USER_DAILY_LIMIT="1")
    first = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a lighthouse"}))
    await first.wait_for(has_result, timeout=20)
    await poll(lambda: db(rig, "SELECT status FROM jobs")[0]["status"] == "done")
    elsewhere = second.channel_ids[0]
    refused = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a harbour"}, channel_id=elsewhere))
    await refused.wait_for(lambda x: x.callbacks, timeout=10)
    assert "all the servers" in answer(refused)["content"]
    assert len(db(rig, "SELECT id FROM jobs")) == 1 and len(rig.images.requests) == 1
    me = await fd.inject_interaction(fd.slash("quota", subcommand="me", channel_id=elsewhere))
    await me.wait_for(lambda x: x.callbacks, timeout=10)
    text = text_of(me)
    assert "0 used" in line(text, "Today") and "1 used" in line(text, "Today in all servers")
