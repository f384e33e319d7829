"""``.env.example``: every setting with its documentation and default, rendered from the declarations in
``bot/config/settings.py`` (``python -m bot env-example > .env.example``)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import Field
from typing import Any

from bot.config.spec import Spec

ENV_EXAMPLE_HEADER = (
    "imagebot settings. Copy to .env and fill in the first two. Real environment variables win over this file. "
    "Each line shows the default. To read another file than ./.env, set {env_file_variable} in the environment. "
    "This file is generated from bot/config/settings.py: python -m bot env-example > .env.example"
)


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


def render(declared: Iterable[tuple[Field[Any], Spec]], env_file_variable: str) -> str:
    """The text of ``.env.example`` for the ``declared`` settings."""
    header = ENV_EXAMPLE_HEADER.format(env_file_variable=env_file_variable)
    out = [*textwrap.wrap(header, 110, initial_indent="# ", subsequent_indent="# ")]
    for f, spec in declared:
        if spec.section:
            out += ["", f"# --- {spec.section} ".ljust(100, "-")]
        out += textwrap.wrap(spec.doc, 110, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)
        out.append(f"{spec.env}={example_value(f, spec)}")
    return "\n".join(out) + "\n"
