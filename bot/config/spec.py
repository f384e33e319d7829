"""How a setting is declared: ``setting(...)`` makes a ``Settings`` field (``bot/config.py``) that carries its
environment variable, parser, default and documentation as a ``Spec`` in the field's metadata."""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable
from dataclasses import Field, dataclass, field
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
) -> T | D:
    """A dataclass field read from the environment variable ``env``; empty or unset = ``default``."""
    meta = {"setting": Spec(env, parse, doc, section, example)}
    if isinstance(default, dict | list | set):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def required(env: str, doc: str, how: str, *, section: str | None = None) -> dict[str, Spec]:
    """Metadata for a required secret (no default; never shown)."""
    return {"setting": Spec(env, parse.text, doc, section, secret=True, required=how)}


def secret_setting(env: str, parse: Callable[[str], T], doc: str) -> T | None:
    """An optional secret (default None): parsed like any setting, never shown in logs or errors."""
    return field(default=None, repr=False, metadata={"setting": Spec(env, parse, doc, secret=True)})


# --- .env.example (bot/config/settings.py renders it from its declarations) ----------------------------


def example_value(f: Field[Any], spec: Spec) -> str:
    """The default of one setting as .env.example writes it ("" for no default)."""
    if spec.example is not None:
        return spec.example
    default = f.default_factory() if callable(f.default_factory) else f.default
    if spec.required or default is None or default == {} or default == ():
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def env_example_text(declared: list[tuple[Field[Any], Spec]], header: str) -> str:
    """The text of ``.env.example`` for ``declared`` settings: each with its documentation and default."""
    out = [*textwrap.wrap(header, 110, initial_indent="# ", subsequent_indent="# ")]
    for f, spec in declared:
        if spec.section:
            out += ["", f"# --- {spec.section} ".ljust(100, "-")]
        out += textwrap.wrap(spec.doc, 110, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)
        out.append(f"{spec.env}={example_value(f, spec)}")
    return "\n".join(out) + "\n"
