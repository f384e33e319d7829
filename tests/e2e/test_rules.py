"""End to end: prompt rules (``/quota rule add/remove/list``) against the real bot process and the fakes.

A moderator ("mod", Manage Server) sets rules; members ("alice", "bob") are refused privately when a prompt
matches, whichever way the prompt comes in (``/imagine``, a reply, the edit modal, Reroll), with no call to
the Images API and no row in the ``jobs`` table. The refusal is in the audit log (who, when, which rule) and
the prompt is stored nowhere: the test reads the database files and the bot's log byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from bot.demo.discord import FakeDiscord, InteractionHandle
from tests.conftest import Rig
from tests.e2e.test_edit import encode, modal_fields, pattern, wait_answer
from tests.helpers.e2e import EPHEMERAL, buttons, db, has_result, job_rows, poll, results_of

REFUSED = "moderators don't allow"


# --- helpers ----------------------------------------------------------------------------------------


async def rule(fd: FakeDiscord, sub: str, options: dict[str, Any] | None = None, user: str = "mod") -> str:
    """Run ``/quota rule <sub>``; returns the private answer's text (content and embed)."""
    h = await fd.inject_interaction(fd.slash("quota", options, group="rule", subcommand=sub, user=user))
    await h.wait_for(lambda x: x.callbacks, timeout=10)
    [cb] = h.callbacks
    assert cb["type"] == 4, cb
    data = cb["data"]
    assert data["flags"] & EPHEMERAL and data["allowed_mentions"] == {"parse": []}, data
    parts = [data.get("content") or ""]
    for embed in data.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
    return "\n".join(parts)


def refusal(h: InteractionHandle) -> str | None:
    """The private refusal of an interaction that was answered at once (nothing public appeared)."""
    if h.callbacks and h.callbacks[0]["type"] == 4:
        data = h.callbacks[0]["data"]
        assert data["flags"] & EPHEMERAL, data
        return str(data["content"])
    return None


async def imagine(
    fd: FakeDiscord, prompt: str, user: str = "alice", channel_id: int | None = None
) -> InteractionHandle:
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": prompt}, user=user, channel_id=channel_id))
    await h.wait_for(lambda x: has_result(x) or refusal(x), timeout=20)
    return h


def api_calls(rig: Rig) -> int:
    return len([r for r in rig.images.requests if r.path.endswith(("/images/generations", "/images/edits"))])


def refusals(rig: Rig) -> list[Any]:
    return db(rig, "SELECT * FROM audit_log WHERE action = 'prompt_refused' ORDER BY id")


def stored_nowhere(rig: Rig, text: str) -> None:
    """``text`` is in none of the database files and not in the bot's log."""
    needle = text.encode()
    for path in rig.db_path.parent.glob(rig.db_path.name + "*"):
        assert needle not in path.read_bytes(), path
    assert text not in rig.log_text()


# --- tests -------------------------------------------------------------------------------------------


async def test_moderators_manage_rules_and_members_cannot(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    mod = fd.users["mod"]

    # The synced command: /quota has a "rule" group with add, remove and list.
    group = next(c for c in fd.global_commands if c["name"] == "quota")
    [sub] = [o for o in group["options"] if o["name"] == "rule"]
    assert sub["type"] == 2 and {o["name"] for o in sub["options"]} == {"add", "remove", "list"}
    add_opts = {o["name"]: o for o in next(o for o in sub["options"] if o["name"] == "add")["options"]}
    assert add_opts["text"]["type"] == 3 and add_opts["regex"]["type"] == 5 and add_opts["sfw_only"]["type"] == 5

    # A member can neither add nor list (rule texts are for moderators only).
    for action, options in (("add", {"text": "bad"}), ("list", None), ("remove", {"id": 1})):
        answer = await rule(fd, action, options, user="alice")
        assert "Only moderators" in answer and "Nothing was changed" in answer
    assert db(rig, "SELECT * FROM prompt_rules") == [] and db(rig, "SELECT * FROM audit_log") == []

    assert "no prompt rules" in await rule(fd, "list")
    added = await rule(fd, "add", {"text": "Bad"})
    assert "Added rule `#1`: word `Bad`, in every channel" in added
    added = await rule(fd, "add", {"text": r"dr[a@]g[o0]n", "regex": True, "sfw_only": True})
    assert "`#2`: regular expression `dr[a@]g[o0]n`, only in channels that are not age-restricted" in added
    assert "rule #1" in await rule(fd, "add", {"text": "ＢＡＤ"})  # the same word in another width and case
    assert "isn't a regular expression" in await rule(fd, "add", {"text": "(?=x)y", "regex": True})
    assert "every prompt" in await rule(fd, "add", {"text": "x*", "regex": True})
    assert "too complex" in await rule(fd, "add", {"text": "(?:[ab]*a[ab]{200}){5}z", "regex": True})

    listed = await rule(fd, "list")
    assert "Prompt rules (2 of 100)" in listed
    assert "`#1` word `Bad` · all channels" in listed and "`#2` regex `dr[a@]g[o0]n` · not in NSFW channels" in listed

    assert "no rule `#7`" in await rule(fd, "remove", {"id": 7})
    assert "Removed rule `#1` (word `Bad`)" in await rule(fd, "remove", {"id": 1})
    listed = await rule(fd, "list")
    assert "`#1`" not in listed and "`#2`" in listed
    assert [r["id"] for r in db(rig, "SELECT id FROM prompt_rules")] == [2]

    # Every change is audited like a quota change, and /quota audit shows it.
    audit = db(rig, "SELECT * FROM audit_log ORDER BY id")
    assert [(a["action"], a["actor_id"], a["target_id"]) for a in audit] == [
        ("add_rule", mod.id, None),
        ("add_rule", mod.id, None),
        ("remove_rule", mod.id, None),
    ]
    details = json.loads(audit[1]["details"])
    assert details["rule_id"] == 2 and details["kind"] == "regex" and details["sfw_only"] is True
    h = await fd.inject_interaction(fd.slash("quota", subcommand="audit", user="mod"))
    await h.wait_for(lambda x: x.callbacks, timeout=10)
    shown = h.callbacks[0]["data"]["embeds"][0]["description"]
    assert "`add_rule`" in shown and "`remove_rule`" in shown and "rule #1, word `Bad`" in shown


async def test_imagine_and_reroll_refused_before_any_reservation(rig: Rig) -> None:
    fd = rig.discord
    fd.world.channels[fd.other_channel_id]["nsfw"] = True  # "art" is age-restricted
    await rig.start_bot()
    alice = fd.users["alice"]

    # A result made before the rules exist, to Reroll later.
    fox = await imagine(fd, "a red fox in the snow")
    assert has_result(fox) and len(job_rows(rig)) == 1 and api_calls(rig) == 1

    await rule(fd, "add", {"text": "bad"})
    await rule(fd, "add", {"text": "坏蛋"})
    await rule(fd, "add", {"text": "dragon", "sfw_only": True})
    await rule(fd, "add", {"text": "fox"})

    # A width variant, another case, a Chinese word inside Chinese text: refused privately and at once.
    for prompt in ("a ｂａｄ dog", "a BAD dog", "一个坏蛋在画画"):
        h = await imagine(fd, prompt)
        text = refusal(h)
        assert text is not None and REFUSED in text, (prompt, text)
        assert "bad" not in text.lower() and "坏蛋" not in text  # the rule's text is not named
        assert h.callback_types == [4] and h.followups == []  # no public "thinking…" ever appeared
    await asyncio.sleep(0.2)
    assert len(job_rows(rig)) == 1 and api_calls(rig) == 1

    # Whole words only; the NSFW-scoped rule does not apply in the age-restricted channel.
    assert has_result(await imagine(fd, "a badge on a jacket"))
    assert has_result(await imagine(fd, "a dragon over the hills", channel_id=fd.other_channel_id))
    assert refusal(await imagine(fd, "a dragon over the hills")) is not None
    assert len(job_rows(rig)) == 3 and api_calls(rig) == 3

    # Reroll of a result whose prompt now matches a rule: refused privately, no reservation, no API call.
    reroll = await fd.inject_interaction(fd.button(buttons(fox.original or {})["Reroll"], fox.original or {}))
    await reroll.wait_for(lambda x: refusal(x), timeout=10)
    assert REFUSED in (refusal(reroll) or "") and reroll.callback_types == [4]
    await asyncio.sleep(0.2)
    assert len(job_rows(rig)) == 3 and api_calls(rig) == 3

    # The audit log counts each refusal: who, when, which rule. Never the prompt.
    rows = refusals(rig)
    assert [(r["actor_id"], json.loads(r["details"])["rule_id"]) for r in rows] == [
        (alice.id, 1),
        (alice.id, 1),
        (alice.id, 2),
        (alice.id, 3),
        (alice.id, 4),
    ]
    assert all(r["created_at"] for r in rows)
    for prompt in ("a ｂａｄ dog", "a BAD dog", "一个坏蛋在画画"):
        stored_nowhere(rig, prompt)
    listed = await rule(fd, "list")
    assert "`#1` word `bad` · all channels · 2 refused" in listed


async def test_reply_edit_modal_and_edit_reroll_refused_without_an_api_call(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    photo_png = encode(pattern(64, 64))
    photo = fd.create_user_message("bob", "", [fd.add_attachment(photo_png, "beach.png", "image/png")])

    # An edit made before the rules exist, to Reroll later.
    menu = await fd.inject_interaction(fd.message_command("Edit image", photo))
    await menu.wait_for(lambda x: x.modal is not None, timeout=5)
    modal_id, field_id = modal_fields(menu)
    first = await fd.inject_interaction(fd.modal_submit(modal_id, {field_id: "give it a starry sky"}))
    await first.wait_for(has_result, timeout=15)
    assert api_calls(rig) == 1 and len(job_rows(rig)) == 1

    await rule(fd, "add", {"text": "night"})
    await rule(fd, "add", {"text": "starry"})

    # A reply: the bot's answer (public, as every answer to a reply) says no and names no rule.
    ask = fd.reply("alice", f"<@{fd.bot_id}> make it NIGHT time", photo, mention_bot=True)
    await fd.inject_message(ask)
    answer = await wait_answer(fd, ask, lambda m: REFUSED in (m.get("content") or ""))
    assert "night" not in answer["content"].lower() and not results_of(answer)

    # The edit modal, /edit and Reroll of an edit answer privately.
    menu = await fd.inject_interaction(fd.message_command("Edit image", photo))
    await menu.wait_for(lambda x: x.modal is not None, timeout=5)
    modal_id, field_id = modal_fields(menu)
    modal = await fd.inject_interaction(fd.modal_submit(modal_id, {field_id: "a ｎｉｇｈｔ sky"}))
    att = fd.add_attachment(photo_png, "photo.png", "image/png")
    slash = await fd.inject_interaction(fd.slash("edit", {"prompt": "by night"}, attachments={"image": att}))
    result = first.original or {}
    reroll = await fd.inject_interaction(fd.button(buttons(result)["Reroll"], result))
    for h in (modal, slash, reroll):
        await h.wait_for(lambda x: refusal(x), timeout=10)
        assert REFUSED in (refusal(h) or "")
        assert h.callback_types == [4] and h.followups == []  # no public "thinking…" ever appeared

    await asyncio.sleep(0.2)
    assert api_calls(rig) == 1 and len(job_rows(rig)) == 1
    assert sorted(json.loads(r["details"])["rule_id"] for r in refusals(rig)) == [1, 1, 1, 2]
    for prompt in ("make it NIGHT time", "a ｎｉｇｈｔ sky", "by night"):
        stored_nowhere(rig, prompt)


async def test_catastrophic_regex_is_bounded_and_the_bot_keeps_answering(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    # Exponential for a backtracking engine on "aaaa…b"; linear for RE2. Plus a pattern that makes RE2's
    # DFA give up (it falls back to its slower, still linear, NFA) on a long random a/b prompt.
    await rule(fd, "add", {"text": "(a+)+$", "regex": True})
    await rule(fd, "add", {"text": "(?:[ab]*a[ab]{150}){5}z", "regex": True})
    rnd = random.Random(7)
    hostile = ["a" * 5999 + "b", "b" + "".join(rnd.choice("ab") for _ in range(5998)) + "b"]

    # Six long prompts through both patterns (two per member: within the per-member job limit), and other
    # interactions every 100 ms meanwhile: every one is acknowledged within Discord's 3 seconds.
    slow = [
        await fd.inject_interaction(fd.slash("imagine", {"prompt": p}, user=who))
        for who in ("alice", "bob", "mod")
        for p in hostile
    ]
    probes: list[InteractionHandle] = []
    started = time.monotonic()
    while time.monotonic() - started < 2.0:
        probes.append(await fd.inject_interaction(fd.slash("quota", subcommand="me", user="bob")))
        await asyncio.sleep(0.1)
    for h in slow + probes:
        await h.wait_for(lambda x: x.callbacks, timeout=10)
        assert ack_latency(h) < 3.0, (h, ack_latency(h))
    assert max(ack_latency(h) for h in probes) < 3.0
    for h in slow:  # none matched: all six were made
        await h.wait_for(has_result, timeout=30)
    # Charged once delivered: the ledger follows the result's edit.
    await poll(lambda: len([r for r in job_rows(rig) if r["status"] == "done"]) == 6)
    # (A reservation slower than 1.5 s under load is given back and taken again after the deferral.)
    assert {r["status"] for r in job_rows(rig)} <= {"done", "cancelled"}

    # A prompt that does match the catastrophic pattern is refused just as quickly.
    h = await imagine(fd, "a" * 6000)
    assert refusal(h) is not None and ack_latency(h) < 3.0
    assert len([r for r in job_rows(rig) if r["status"] == "done"]) == 6
    assert [json.loads(r["details"])["rule_id"] for r in refusals(rig)] == [1]


def ack_latency(h: InteractionHandle) -> float:
    """Seconds from the fake gateway sending the interaction to its callback arriving."""
    [callback] = [r for r in h.requests if r.path.endswith("/callback")]
    return callback.time - h.created
