"""imagebot: a Discord bot for OpenAI's GPT image models.

``bot/`` holds the services (no Discord, except the composition root ``__main__.py``); ``cogs/`` is the
Discord layer. ``CodedError`` lives here because every layer raises it: the base of domain errors that users
read, a ``code`` naming why and ``params`` that fill the words (``bot/messages/`` words each code in the
reader's language; ``str()`` is for logs only).
"""

from __future__ import annotations

from typing import Any


class CodedError(Exception):
    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code, params)
        self.code = code
        self.params = params

    def __str__(self) -> str:
        return f"{self.code} {self.params}" if self.params else self.code
