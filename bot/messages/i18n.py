"""Languages: message catalogs (gettext ``.po``, maintained with Babel), locale resolution, formatting.

No Discord imports. The catalogs live in ``bot/messages/locales/``: ``imagebot.pot`` is the English template
extracted from the code (``python -m bot.messages.catalog_tool extract``), and ``<lang>/LC_MESSAGES/imagebot.po``
holds one language's translations. The ``.po`` files are compiled in memory with Babel the first time a
language is used, so there is no build step and nothing to forget after ``pip install``.

A msgid is the English text itself, with ``{named}`` placeholders filled by ``str.format``::

    translate("zh-CN", "It resets {when}.", when=relative_time(at))
    translate_plural(locale, "{n} image", "{n} images", n)        # {n} is filled in for you

Strings whose call sites do not call ``translate`` yet are marked with ``N_`` (plain) or ``NC_``
(with a context) so the extractor finds them; ``bot/messages/command_strings.py`` lists them.

Adding or changing a string: write ``translate(locale, "English text {x}", x=...)`` at the call site (the
msgid must be a literal, so the extractor sees it), then ``python -m bot.messages.catalog_tool extract`` and
``python -m bot.messages.catalog_tool update``, translate the new (or fuzzy) entries in each ``.po`` file, and run
``tests/unit/messages/test_i18n.py``: it fails while the template lags the code or a language lacks an entry.
"""

from __future__ import annotations

import gettext
import io
import logging
import threading
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _babel_format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

log = logging.getLogger(__name__)

DOMAIN = "imagebot"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
TEMPLATE = LOCALES_DIR / f"{DOMAIN}.pot"
DEFAULT_LOCALE = "en"
# Catalogs the bot ships (besides English, which is the msgids themselves).
LANGUAGES = ("zh_CN",)
# Locale codes that read a catalog other than their own name: Discord has one Simplified Chinese code
# (zh-CN), other spellings of Simplified Chinese are accepted too.
_ALIASES = {"zh": "zh_CN", "zh_hans": "zh_CN", "zh_sg": "zh_CN", "zh_hans_cn": "zh_CN"}

# Contexts (msgctxt) in use, written as a literal at each call so the extractor sees them: command names
# follow Discord's rules for names, so the same English word gets its own entry there.
COMMAND_NAME = "command name"

_lock = threading.Lock()
_catalogs: dict[str, gettext.NullTranslations] = {}


def N_(msgid: str) -> str:
    """Mark a string for the extractor without translating it (it is translated where it is shown)."""
    return msgid


def NC_(context: str, msgid: str) -> str:
    """``N_`` with a context (msgctxt)."""
    return msgid


def NP_(singular: str, plural: str) -> tuple[str, str]:
    """``N_`` for a plural pair."""
    return singular, plural


# --- locales -----------------------------------------------------------------------------------------


def catalog_name(code: str | None) -> str | None:
    """The catalog for a locale code (``zh-CN`` → ``zh_CN``, ``en-GB`` → ``en``), or None if none fits."""
    if not code:
        return None
    key = str(code).strip().replace("-", "_")
    if not key:
        return None
    lower = key.lower()
    if lower == "en" or lower.startswith("en_"):
        return DEFAULT_LOCALE
    for lang in LANGUAGES:
        if lower == lang.lower():
            return lang
    return _ALIASES.get(lower)


def resolve_locale(*codes: str | None) -> str:
    """The first of ``codes`` that has a catalog (interaction locale, then server locale), else English."""
    for code in codes:
        name = catalog_name(code)
        if name is not None:
            return name
    return DEFAULT_LOCALE


def _babel_locale(locale: str | None) -> Locale:
    name = catalog_name(locale) or DEFAULT_LOCALE
    try:
        return Locale.parse(name)
    except (UnknownLocaleError, ValueError):  # pragma: no cover - our own names always parse
        return Locale.parse(DEFAULT_LOCALE)


# --- catalogs ----------------------------------------------------------------------------------------


def po_path(lang: str) -> Path:
    return LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_po(data: bytes, lang: str) -> gettext.GNUTranslations:
    """A ``.po`` file compiled in memory (fuzzy and empty entries left out, so they read as English)."""
    catalog = read_po(io.BytesIO(data), locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _load(lang: str) -> gettext.NullTranslations:
    path = po_path(lang)
    try:
        return compile_po(path.read_bytes(), lang)
    except OSError:
        log.error("message catalog %s is missing; %s users will read English", path, lang)
    except Exception:  # a broken catalog must not stop the bot: English is always there
        log.exception("message catalog %s could not be read; %s users will read English", path, lang)
    return gettext.NullTranslations()


def catalog(locale: str | None) -> gettext.NullTranslations:
    """The compiled catalog of a locale code (any spelling ``resolve_locale`` accepts); English is empty."""
    lang = resolve_locale(locale)
    if lang == DEFAULT_LOCALE:
        return _ENGLISH
    found = _catalogs.get(lang)
    if found is None:
        with _lock:
            found = _catalogs.get(lang)
            if found is None:
                found = _catalogs[lang] = _load(lang)
    return found


_ENGLISH = gettext.NullTranslations()


def reload_catalogs() -> None:
    """Forget compiled catalogs (the next use reads the ``.po`` files again)."""
    with _lock:
        _catalogs.clear()


# --- translating ---------------------------------------------------------------------------------------


def _fill(text: str, fallback: str, params: dict[str, Any]) -> str:
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError, AttributeError):
        # A translation with a broken placeholder: the English text is always right.
        log.error("translation %r does not fit its parameters %s", text, sorted(params))
        return fallback.format(**params)


def translate(locale: str | None, msgid: str, /, **params: Any) -> str:
    """``msgid`` in the language of ``locale`` (English when there is no translation), placeholders filled."""
    return _fill(catalog(locale).gettext(msgid), msgid, params)


def translate_context(locale: str | None, context: str, msgid: str, /, **params: Any) -> str:
    """``translate`` for an entry with a context (msgctxt), e.g. ``COMMAND_NAME``."""
    return _fill(catalog(locale).pgettext(context, msgid), msgid, params)


def translate_plural(locale: str | None, singular: str, plural: str, n: int, /, **params: Any) -> str:
    """The plural form for ``n`` in the language of ``locale``; ``{n}`` is ``n`` formatted for it."""
    params.setdefault("n", format_number(locale, n))
    fallback = singular if n == 1 else plural
    return _fill(catalog(locale).ngettext(singular, plural, n), fallback, params)


# --- numbers, money, dates -------------------------------------------------------------------------


def format_number(locale: str | None, value: int | float | Decimal, *, decimals: int | None = None) -> str:
    """A number as the locale writes it (``1,234``; ``decimals`` fixes the digits after the point)."""
    if decimals is None:
        return format_decimal(value, locale=_babel_locale(locale))
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return format_decimal(value, format=pattern, locale=_babel_locale(locale))


def format_usd(locale: str | None, amount: float | Decimal, *, decimals: int = 2) -> str:
    """US dollars as the locale writes them (``$1.50`` in English, ``US$1.50`` in Chinese)."""
    loc = _babel_locale(locale)
    if decimals == 2:
        return format_currency(amount, "USD", locale=loc)
    pattern = loc.currency_formats["standard"].pattern.split(";")[0].replace("0.00", "0." + "0" * decimals)
    return format_currency(amount, "USD", format=pattern, locale=loc, currency_digits=False)


def format_share(locale: str | None, ratio: float) -> str:
    """A ratio as a percentage (``0.25`` → ``25%``)."""
    return format_percent(ratio, locale=_babel_locale(locale))


def format_day(locale: str | None, when: date | datetime) -> str:
    """A calendar day in words (``Dec 2, 2026``, ``2026年12月2日``). Moments use Discord timestamps."""
    return _babel_format_date(when, format="medium", locale=_babel_locale(locale))
