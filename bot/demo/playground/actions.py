"""What people do on the page, turned into what Discord would send the bot.

Every action names the person (``alice``, ``bob`` or ``mod``) and arrives as JSON from the page; nothing in
it is trusted: names, ids and option values are checked against the local Discord's world and the commands
the bot registered before anything reaches the bot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.demo.discord.payloads import ADMINISTRATOR, FakeRole, FakeUser
from bot.demo.playground.live import LiveDiscord, visible_to
from bot.messages.i18n import N_

PEOPLE = ("alice", "bob", "mod")
LANGUAGES = ("en-US", "zh-CN")
MAX_TEXT = 4000  # Discord's longest message (Nitro); the bot enforces its own prompt limits
MAX_UPLOAD = 25 * 1024 * 1024
AUTOCOMPLETE_WAIT = 3.0


class ActionError(Exception):
    """The page asked for something Discord would not let a person do (answered 400 with the reason, in the
    person's language: ``msgid`` is marked with ``N_`` and translated where it is shown)."""

    def __init__(self, msgid: str, **params: Any) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.params = params

    def __str__(self) -> str:
        return self.msgid.format(**self.params)


@dataclass
class Person:
    key: str
    locale: str = "en-US"

    def __post_init__(self) -> None:
        if self.key not in PEOPLE:
            raise ActionError(N_("unknown person"))


@dataclass
class Actions:
    """The page's actions on one ``LiveDiscord``; ``people`` hold each person's language."""

    fd: LiveDiscord
    people: dict[str, Person] = field(default_factory=lambda: {k: Person(k) for k in PEOPLE})
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)  # attachment id -> attachment

    # ------------------------------------------------------------------------------------ helpers
    def person(self, key: Any) -> Person:
        if not isinstance(key, str) or key not in self.people:
            raise ActionError(N_("unknown person"))
        return self.people[key]

    def channel(self, value: Any) -> int:
        try:
            cid = int(value)
        except (TypeError, ValueError):
            raise ActionError(N_("unknown channel")) from None
        if self.fd.world.guild_of_channel(cid) != self.fd.guild_id:
            raise ActionError(N_("unknown channel"))
        return cid

    def message(self, value: Any, person: Person) -> dict[str, Any]:
        try:
            msg = self.fd.messages[int(value)]
        except (TypeError, ValueError, KeyError):
            raise ActionError(N_("unknown message")) from None
        if not visible_to(msg, self.fd.world.users[person.key].id):
            raise ActionError(N_("unknown message"))
        return msg

    def set_locale(self, key: Any, locale: Any) -> None:
        if locale not in LANGUAGES:
            raise ActionError(N_("unknown language"))
        self.person(key).locale = locale

    def upload(self, data: bytes, filename: str, content_type: str | None, channel_id: Any) -> dict[str, Any]:
        """A file a person attached in the composer, on the local CDN until it is sent."""
        if not data or len(data) > MAX_UPLOAD:
            raise ActionError(N_("the file is empty or larger than 25 MB"))
        safe = re.sub(r"[^\w.\-]+", "_", filename or "file")[-80:] or "file"
        att = self.fd.add_attachment(data, safe, content_type, channel_id=self.channel(channel_id))
        self.uploads[att["id"]] = att
        return att

    def _attachment(self, value: Any) -> dict[str, Any]:
        att = self.uploads.get(str(value))
        if att is None:
            raise ActionError(N_("unknown attachment"))
        return att

    def _commands(self) -> list[dict[str, Any]]:
        return [*self.fd.commands.get(self.fd.guild_id, []), *self.fd.commands.get(None, [])]

    def _command(self, name: Any, ctype: int, person: Person) -> dict[str, Any]:
        for c in self._commands():
            if c["name"] == name and int(c.get("type") or 1) == ctype:
                if not self.may_use(person.key, c):
                    raise ActionError(N_("you do not have the permissions to use that command"))
                return c
        raise ActionError(N_("the bot has not registered that command"))

    def may_use(self, key: str, command: dict[str, Any]) -> bool:
        """Discord's rule for a command's ``default_member_permissions``: none set, everyone; otherwise
        members whose server permissions include them all (administrators always)."""
        required = command.get("default_member_permissions")
        if required is None:
            return True
        have = self.fd.world.permissions_of(key)
        return have & ADMINISTRATOR != 0 or (int(required) != 0 and have & int(required) == int(required))

    # ------------------------------------------------------------------------------------ actions
    async def send_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """A plain message, with uploads, optionally a reply (which pings its author unless told not to)."""
        person = self.person(body.get("person"))
        cid = self.channel(body.get("channel_id"))
        content = str(body.get("content") or "")[:MAX_TEXT]
        atts = [self._attachment(a) for a in (body.get("attachments") or [])[:10]]
        if not content.strip() and not atts:
            raise ActionError(N_("empty message"))
        bot = self.fd.bot_user
        # "@imagebot" typed in the composer is a mention of the bot, as Discord's autocomplete makes it.
        content = re.sub(r"@imagebot\b", bot.mention, content, flags=re.IGNORECASE)
        mention = bot.mention in content
        ref = body.get("reply_to")
        if ref is not None:
            target = self.message(ref, person)
            if int(target["channel_id"]) != cid:
                raise ActionError(N_("unknown message"))
            ping = bool(body.get("ping", True)) and int(target["author"]["id"]) == bot.id
            msg = self.fd.reply(person.key, content, target, mention_bot=mention or ping, attachments=atts)
        else:
            msg = self.fd.create_user_message(person.key, content, atts, mention_bot=mention, channel_id=cid)
        await self.fd.inject_message(msg)
        self.fd.publish()
        return msg

    async def delete_message(self, body: dict[str, Any]) -> None:
        """A person deletes their own message (a moderator any message)."""
        person = self.person(body.get("person"))
        msg = self.message(body.get("message_id"), person)
        if int(msg["author"]["id"]) != self.fd.world.users[person.key].id and person.key != "mod":
            raise ActionError(N_("only the author or a moderator deletes a message"))
        await self.fd.delete_message(msg)
        self.fd.publish()

    async def slash(self, body: dict[str, Any]) -> None:
        """A slash command: ``name``, optional ``group``/``subcommand``, ``options`` {name: value}."""
        await self._interact(self._slash_payload(body, focused=None))

    async def autocomplete(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """What the bot suggests for option ``focused`` while it is being typed (Discord's autocomplete)."""
        focused = str(body.get("focused") or "")
        payload = self._slash_payload(body, focused=focused)
        handle = await self.fd.inject_interaction(payload)
        try:
            await handle.wait_for(lambda h: h.callbacks, timeout=AUTOCOMPLETE_WAIT)
        except AssertionError:
            return []  # Discord shows no suggestions when the bot is late
        data = handle.callbacks[0].get("data") or {}
        return list(data.get("choices") or []) if handle.callbacks[0].get("type") == 8 else []

    def _slash_payload(self, body: dict[str, Any], *, focused: str | None) -> dict[str, Any]:
        person = self.person(body.get("person"))
        cid = self.channel(body.get("channel_id"))
        command = self._command(body.get("name"), 1, person)
        group, sub = body.get("group"), body.get("subcommand")
        declared = command.get("options") or []
        if group is not None:
            declared = _child(declared, group, 2).get("options") or []
        if sub is not None:
            declared = _child(declared, sub, 1).get("options") or []
        values = body.get("options") or {}
        if not isinstance(values, dict):
            raise ActionError(N_("bad options"))
        plain: dict[str, Any] = {}
        files: dict[str, dict[str, Any]] = {}
        for opt in declared:
            name = opt["name"]
            if name == focused:  # what is typed so far, as a string, whatever the option's type
                plain[name] = {"name": name, "type": int(opt["type"]), "value": str(values.get(name) or "")[:100],
                               "focused": True}  # fmt: skip
                continue
            if name not in values or values[name] in (None, ""):
                if opt.get("required") and focused is None:
                    raise ActionError(N_("{option} is required"), option=name)
                continue
            kind = int(opt["type"])
            if kind == 11:
                files[name] = self._attachment(values[name])
            else:
                plain[name] = self._option_value(kind, values[name], opt)
        if focused is not None and focused not in plain:
            raise ActionError(N_("unknown option"))
        payload = self.fd.slash(
            command["name"], plain, user=person.key, subcommand=sub, group=group, attachments=files,
            channel_id=cid, locale=person.locale,
        )  # fmt: skip
        if focused is not None:
            payload["type"] = 4  # APPLICATION_COMMAND_AUTOCOMPLETE
        return payload

    def _option_value(self, kind: int, raw: Any, opt: dict[str, Any]) -> Any:
        try:
            value: Any
            if kind == 3:
                value = {"name": opt["name"], "type": 3, "value": str(raw)[:6000]}
            elif kind == 4:
                value = int(raw)
            elif kind == 10:
                value = float(raw)
            elif kind == 5:
                value = raw in (True, "true", "True", "1")
            elif kind == 6:
                value = self.fd.world.user(int(raw))
            elif kind == 8:
                value = self.fd.world.role(int(raw))
            else:
                raise ActionError(N_("this kind of option is not supported here"))
        except (TypeError, ValueError, KeyError):
            raise ActionError(N_("{option}: not a valid value"), option=opt["name"]) from None
        _check_bounds(value, opt)
        choices = opt.get("choices")
        if choices and not isinstance(value, FakeUser | FakeRole):
            plain = value["value"] if isinstance(value, dict) else value
            if plain not in [c["value"] for c in choices]:
                raise ActionError(N_("{option}: not one of the choices"), option=opt["name"])
        return value

    async def button(self, body: dict[str, Any]) -> None:
        person = self.person(body.get("person"))
        msg = self.message(body.get("message_id"), person)
        custom_id = str(body.get("custom_id") or "")
        kinds = {
            int(c.get("type", 0)): c
            for row in msg.get("components") or []
            for c in row.get("components") or []
            if c.get("custom_id") == custom_id
        }
        if not kinds:
            raise ActionError(N_("no such button on that message"))
        ctype, comp = next(iter(kinds.items()))
        if comp.get("disabled"):
            raise ActionError(N_("that button is disabled"))
        values = body.get("values")
        if ctype != 2 and not isinstance(values, list):
            raise ActionError(N_("a select needs values"))
        payload = self.fd.button(
            custom_id, msg, user=person.key, component_type=ctype,
            values=[str(v) for v in values] if ctype != 2 and isinstance(values, list) else None,
        )  # fmt: skip
        payload["locale"] = person.locale
        await self._interact(payload)

    async def message_command(self, body: dict[str, Any]) -> None:
        """Apps → a message command (e.g. "Edit image") on a message."""
        person = self.person(body.get("person"))
        msg = self.message(body.get("message_id"), person)
        command = self._command(body.get("name"), 3, person)
        payload = self.fd.message_command(command["name"], msg, user=person.key)
        payload["locale"] = person.locale
        await self._interact(payload)

    async def modal_submit(self, body: dict[str, Any]) -> None:
        person = self.person(body.get("person"))
        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            raise ActionError(N_("bad fields"))
        mid = body.get("message_id")
        msg = self.message(mid, person) if mid is not None else None
        cid = self.channel(body.get("channel_id") or (msg or {}).get("channel_id"))
        payload = self.fd.modal_submit(
            str(body.get("custom_id") or ""), {str(k): str(v)[:4000] for k, v in fields.items()},
            user=person.key, message=msg, channel_id=cid,
        )  # fmt: skip
        payload["locale"] = person.locale
        await self._interact(payload)

    async def _interact(self, payload: dict[str, Any]) -> None:
        # A modal answer is looked for even if it came before this line: ``publish`` checks the handle.
        handle = await self.fd.inject_interaction(payload)
        self.fd.watch(handle)


def _check_bounds(value: Any, opt: dict[str, Any]) -> None:
    """Discord's own checks of an option's value before the command reaches the bot: number ranges and
    string lengths the bot declared."""
    name = opt["name"]
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = opt.get("min_value"), opt.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ActionError(N_("{option}: out of range"), option=name)
    if isinstance(value, dict) and isinstance(value.get("value"), str):
        length = len(value["value"])
        if length < int(opt.get("min_length") or 0) or length > int(opt.get("max_length") or 6000):
            raise ActionError(N_("{option}: too short or too long"), option=name)


def _child(options: list[dict[str, Any]], name: Any, kind: int) -> dict[str, Any]:
    for opt in options:
        if opt.get("name") == name and int(opt.get("type", 0)) == kind:
            return opt
    raise ActionError(N_("unknown subcommand"))
