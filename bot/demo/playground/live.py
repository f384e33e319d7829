"""The local Discord seen by people: every change to a message, pushed to the pages that may see it.

``LiveDiscord`` is the tests' ``FakeDiscord`` plus a listener list: after each request the bot makes and each
gateway frame (the fake's own change notification), it compares the message store with what it last
published and hands creations, edits and deletions to the listeners. Private (ephemeral) answers carry the
id of the one person who may see them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from bot.demo.discord import FakeDiscord, InteractionHandle
from bot.demo.discord.payloads import FLAG_EPHEMERAL

Event = dict[str, Any]
RESPONSE_DEADLINE = 3.0  # Discord's time for the bot to acknowledge an interaction
Listener = Callable[[Event], None]


def viewer_of(message: dict[str, Any]) -> int | None:
    """The only user who may see ``message`` (an ephemeral interaction answer), or None: everyone."""
    if not int(message.get("flags") or 0) & FLAG_EPHEMERAL:
        return None
    meta = message.get("interaction_metadata") or {}
    user = meta.get("user") or {}
    return int(user["id"]) if user.get("id") else -1


def visible_to(message: dict[str, Any], user_id: int) -> bool:
    owner = viewer_of(message)
    return owner is None or owner == user_id


class LiveDiscord(FakeDiscord):
    """``FakeDiscord`` that publishes message changes and the modals the bot opens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listeners: list[Listener] = []
        self._published: dict[int, int] = {}  # message id -> number of states published
        self._awaiting_modal: list[InteractionHandle] = []
        self._status: tuple[Any, ...] = ()
        # Discord drops an interaction not acknowledged within 3 s; here the bot shares a laptop with a
        # browser, so a slow first answer after start-up should not lose a person's click.
        self.interaction_ack_timeout = None

    async def _notify(self) -> None:
        await super()._notify()
        self.publish()

    def watch(self, handle: InteractionHandle) -> None:
        """Publish the modal the bot may answer ``handle`` with (to the person who asked), and tell that
        person when the bot did not answer within Discord's 3 seconds (the answer is still taken later)."""
        self._awaiting_modal.append(handle)
        asyncio.get_running_loop().call_later(RESPONSE_DEADLINE, self._check_answered, handle)
        self.publish()

    def _check_answered(self, handle: InteractionHandle) -> None:
        if handle.callbacks:
            return
        event = {"type": "no_answer", "viewer": int(handle.payload["member"]["user"]["id"])}
        for listener in list(self.listeners):
            listener(event)

    def publish(self) -> None:
        """Hand every change since the last call to the listeners."""
        events: list[Event] = []
        status = (tuple(id(v) for v in self.commands.values()), self.bot_connected)
        if status != self._status:  # the bot (re)connected or (re)registered its commands
            self._status = status
            events.append({"type": "status", "viewer": None})
        for mid, msg in self.messages.items():
            states = len(self.message_history.get(mid, ()))
            if self._published.get(mid) != states:
                self._published[mid] = states
                events.append({"type": "message", "message": msg, "viewer": viewer_of(msg)})
        for mid in [m for m in self._published if m not in self.messages]:
            del self._published[mid]
            gone = self.deleted_messages.get(mid, {})
            events.append({"type": "delete", "id": str(mid), "channel_id": gone.get("channel_id")})
        for handle in list(self._awaiting_modal):
            if handle.modal is not None:
                self._awaiting_modal.remove(handle)
                payload = handle.payload
                events.append(
                    {
                        "type": "modal",
                        "viewer": int(payload["member"]["user"]["id"]),
                        "modal": handle.modal,
                        "channel_id": payload["channel_id"],
                        "message_id": (payload.get("message") or {}).get("id"),
                    }
                )
            elif handle.callbacks or handle.expired:
                self._awaiting_modal.remove(handle)
        for event in events:
            for listener in list(self.listeners):
                listener(event)

    @property
    def bot_connected(self) -> bool:
        return any(s.identified for s in self._sessions)

    def browser_json(self, value: Any) -> str:
        """JSON for the page, with the local CDN's absolute links made relative to the page's own host
        (which serves ``/cdn/``), so the page works from whatever address it was opened at."""
        return json.dumps(value, ensure_ascii=False).replace(self.base_url + "/cdn/", "/cdn/")
