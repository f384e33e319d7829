"""How a setting is declared: ``setting(...)`` makes a ``Settings`` field (``bot/config.py``) that carries its
environment variable, parser, default and documentation as a ``Spec`` in the field's metadata."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.config import parsers as parse

T = TypeVar("T")
D = TypeVar("D")


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class Spec:
    """How one field of ``Settings`` is read: kept in the field's metadata under ``"setting"``."""

    env: str
    parse: Callable[[str], Any]
    doc: str
    section: str | None = None  # starts a new section of .env.example
    example: str | None = None  # the default as written in .env.example, when not derivable
    secret: bool = False
    required: str | None = None  # when set: the value is required, and this says how to provide it


def setting(
    env: str,
    parse: Callable[[str], T],
    default: D,
    doc: str,
    *,
    section: str | None = None,
    example: str | None = None,
    secret: bool = False,
) -> T | D:
    """A dataclass field read from the environment variable ``env``; empty or unset = ``default``. A
    ``secret`` is never shown (start-up line, errors, reprs)."""
    meta = {"setting": Spec(env, parse, doc, section, example, secret=secret)}
    if isinstance(default, dict | list | set):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


def required(env: str, doc: str, how: str, *, section: str | None = None) -> dict[str, Spec]:
    """Metadata for a required secret (no default; never shown)."""
    return {"setting": Spec(env, parse.text, doc, section, secret=True, required=how)}


def secret_setting(env: str, parse: Callable[[str], T], doc: str) -> T | None:
    """An optional secret (default None): parsed like any setting, never shown in logs or errors."""
    return field(default=None, repr=False, metadata={"setting": Spec(env, parse, doc, secret=True)})
