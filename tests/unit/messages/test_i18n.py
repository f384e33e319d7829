"""Languages without Discord: the catalogs are complete and agree with the code, locales resolve as
documented, plurals and numbers read naturally, and the command translator keeps Discord's rules."""

from __future__ import annotations

import io
import re
import tomllib
from pathlib import Path
from typing import Any

import discord
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from discord import app_commands

from bot import messages
from bot.messages import catalog_tool as i18n_tool
from bot.messages import i18n
from bot.messages.i18n import (
    compile_po,
    format_day,
    format_number,
    format_share,
    format_usd,
    resolve_locale,
    translate,
    translate_context,
    translate_plural,
)
from cogs._translator import CatalogTranslator, choice_text, valid_name

ROOT = Path(__file__).resolve().parents[3]


# --- the catalogs -------------------------------------------------------------------------------------


def test_catalogs_are_complete_and_agree_with_the_code() -> None:
    """The template is what the extractor finds in the code today, and zh_CN translates all of it."""
    assert i18n_tool.problems() == []


def test_every_message_constant_of_bot_messages_is_in_the_template() -> None:
    template = i18n_tool.keys(i18n_tool.read(i18n.TEMPLATE))
    constants = {
        name: value
        for name, value in vars(messages).items()
        if name.isupper() and isinstance(value, str) and any(c.isalpha() for c in value)
    }
    assert len(constants) > 20
    assert {name: text for name, text in constants.items() if (text, None) not in template} == {}


def _catalog(entries: list[tuple[object, object]], *, fuzzy: tuple[str, ...] = ()) -> Catalog:
    cat = Catalog(locale="zh_CN", domain="imagebot")
    for msgid, string in entries:
        first = msgid[0] if isinstance(msgid, tuple) else msgid
        cat.add(msgid, string, flags=("fuzzy",) if first in fuzzy else ())  # type: ignore[arg-type]
    return cat


def test_the_check_finds_every_kind_of_problem() -> None:
    template = _catalog([("Hello {name}", None), ("Bye", None), (("{n} image", "{n} images"), None), ("Old", None)])
    catalog = _catalog(
        [
            ("Hello {name}", "你好 {user}"),  # placeholder renamed
            ("Bye", "再见"),  # fine
            (("{n} image", "{n} images"), ("",)),  # plural without translation
            ("Extra", "多余"),  # not in the template
        ]
    )
    found = i18n_tool.translation_problems(template, catalog, "zh_CN")
    assert "zh_CN: 'Hello {name}' has placeholders ['user'], not ['name']" in found
    assert "zh_CN: '{n} image' has no translation" in found
    assert "zh_CN: 'Extra' is not in the template" in found
    assert "zh_CN: 'Old' is missing" in found
    assert not [p for p in found if "'Bye'" in p]

    fuzzy = _catalog([("Bye", "再见"), ("Old", "旧")], fuzzy=("Old",))
    assert i18n_tool.translation_problems(_catalog([("Bye", None), ("Old", None)]), fuzzy, "zh_CN") == [
        "zh_CN: 'Old' is fuzzy"
    ]


def test_placeholders_are_read_like_str_format() -> None:
    assert i18n_tool.placeholders("{a} and {b:.2f} but not {{c}}") == {"a", "b"}
    assert i18n_tool.placeholders("no fields") == set()


def test_fuzzy_and_empty_entries_read_as_english() -> None:
    cat = _catalog([("Yes", "是"), ("Maybe", "也许"), ("No", "")], fuzzy=("Maybe",))
    buffer = io.BytesIO()
    write_po(buffer, cat)
    compiled = compile_po(buffer.getvalue(), "zh_CN")
    assert [compiled.gettext(m) for m in ("Yes", "Maybe", "No")] == ["是", "Maybe", "No"]


def test_catalog_files_ship_with_the_package() -> None:
    """``pip install`` (and the Docker wheel) carries the .po files: the bot compiles them at first use."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["bot.messages"]
    shipped = {p for pattern in patterns for p in (ROOT / "bot" / "messages").glob(pattern)}
    assert i18n.po_path("zh_CN") in shipped and i18n.TEMPLATE in shipped


# --- locales, translating, formatting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (("zh-CN",), "zh_CN"),
        (("en-US", "zh-CN"), "en"),  # the user's language comes first
        (("en-GB",), "en"),
        (("fr", "zh-CN"), "zh_CN"),  # no French catalog: the server's language
        (("zh-TW", None), "en"),  # Traditional Chinese readers are not given Simplified
        ((None, None), "en"),
        (("",), "en"),
        (("zh_cn",), "zh_CN"),
    ],
)
def test_locales_resolve_user_then_server_then_english(codes: tuple[str | None, ...], expected: str) -> None:
    assert resolve_locale(*codes) == expected


def test_translate_fills_placeholders_and_falls_back_to_english() -> None:
    assert translate("zh-CN", "That value for `{name}` isn't valid.", name="size") == "`size` 的值无效。"
    english = translate("en-US", "That value for `{name}` isn't valid.", name="size")
    assert english == "That value for `size` isn't valid."
    assert translate(None, "A sentence nobody translated") == "A sentence nobody translated"
    assert translate("zh-CN", "A sentence nobody translated {x}", x="{y}") == "A sentence nobody translated {y}"
    assert translate_context("zh-CN", i18n.COMMAND_NAME, "quota") == "配额"


def test_plurals_follow_each_language() -> None:
    assert translate_plural("en", "{n} image", "{n} images", 1) == "1 image"
    assert translate_plural("en", "{n} image", "{n} images", 2) == "2 images"
    assert translate_plural("en", "{n} image", "{n} images", 12000) == "12,000 images"
    assert translate_plural("zh-CN", "{n} image", "{n} images", 1) == "1 张图片"
    assert translate_plural("zh-CN", "{n} image", "{n} images", 5) == "5 张图片"


def test_a_broken_translation_never_breaks_the_message(caplog: pytest.LogCaptureFixture) -> None:
    assert i18n._fill("你好 {user}", "Hello {name}", {"name": "Ann"}) == "Hello Ann"
    assert "does not fit its parameters" in caplog.text


def test_numbers_money_and_days() -> None:
    assert format_number("en", 1234567) == "1,234,567"
    assert format_number("zh-CN", 1234.5, decimals=2) == "1,234.50"
    assert format_usd("en-US", 2.5) == "$2.50"
    assert format_usd("zh-CN", 2.5) == "US$2.50"
    assert format_usd("en", 0.0126, decimals=3) == "$0.013"
    assert format_usd("zh-CN", 1234.5) == "US$1,234.50"
    assert format_share("zh-CN", 0.25) == "25%"
    from datetime import date

    assert format_day("zh-CN", date(2026, 12, 2)) == "2026年12月2日"
    assert format_day("en-GB", date(2026, 12, 2)) == "Dec 2, 2026"


# --- the command translator ---------------------------------------------------------------------------------


def test_name_rule_of_discord() -> None:
    assert valid_name("画图") and valid_name("manager-role_2") and valid_name("管理身份组")
    assert not valid_name("Edit image") and not valid_name("Imagine") and not valid_name("a" * 33)
    assert valid_name("Edit image", menu=True) and valid_name("编辑图片", menu=True)


def test_size_choices_are_translated_by_shape() -> None:
    assert choice_text("zh_CN", "1024x1024 (square)") == "1024x1024（方形）"
    assert choice_text("zh_CN", "16:9 (1536x864)") == "16:9 (1536x864)"
    assert choice_text("zh_CN", "transparent") == "透明"


def _context(location: app_commands.TranslationContextLocation) -> Any:
    """A translation context as discord.py builds it (the translator reads only its location here)."""
    return app_commands.TranslationContext(location, None)  # type: ignore[call-overload]


async def test_translator_answers_zh_cn_only() -> None:
    translator = CatalogTranslator()
    name = _context(app_commands.TranslationContextLocation.command_name)
    other = _context(app_commands.TranslationContextLocation.other)
    s = app_commands.locale_str
    assert await translator.translate(s("imagine"), discord.Locale.chinese, name) == "画图"
    assert await translator.translate(s("What to draw"), discord.Locale.chinese, other) == "要画什么"
    assert await translator.translate(s("imagine"), discord.Locale.american_english, name) is None
    assert await translator.translate(s("imagine"), discord.Locale.taiwan_chinese, name) is None
    assert await translator.translate(s("not in any catalog"), discord.Locale.chinese, other) is None


async def test_a_name_that_breaks_discords_rules_is_left_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A translator's slip (a space, capitals) must not make Discord refuse the whole command sync."""
    cat = Catalog(locale="zh_CN", domain="imagebot")
    cat.add("imagine", "画 图", context=i18n.COMMAND_NAME)
    cat.add("edit", "Edit", context=i18n.COMMAND_NAME)
    cat.add("What to draw", "画" * 101)
    buffer = io.BytesIO()
    write_po(buffer, cat)
    monkeypatch.setitem(i18n._catalogs, "zh_CN", compile_po(buffer.getvalue(), "zh_CN"))
    translator = CatalogTranslator()
    name = _context(app_commands.TranslationContextLocation.command_name)
    other = _context(app_commands.TranslationContextLocation.other)
    s = app_commands.locale_str
    assert await translator.translate(s("imagine"), discord.Locale.chinese, name) is None
    assert await translator.translate(s("edit"), discord.Locale.chinese, name) is None
    assert await translator.translate(s("What to draw"), discord.Locale.chinese, other) is None
    assert caplog.text.count("not used") == 3


# --- the /quota me words, in both languages ----------------------------------------------------------------


def _usage(**limits: Any) -> Any:
    from datetime import UTC, datetime

    from bot.quota import UsageSummary
    from bot.quota.policy import Limits

    at = datetime(2026, 12, 3, tzinfo=UTC)
    values = {"daily": 5, "monthly": None, "daily_source": "role:42", "monthly_source": "server", **limits}
    return UsageSummary(Limits(**values), 2, 1200, at, at, 5.0, 1.25, "Asia/Shanghai")


def test_quota_me_reads_naturally_in_chinese() -> None:
    from cogs.quota.render import me_text

    lines = me_text(_usage(), "zh-CN").splitlines()
    assert lines[1] == "**今天**：已用 2 张，剩余 **3** 张（上限 5，来自身份组 <@&42>）· <t:1796256000:R>重置"
    assert lines[2] == "**本月**：已用 1,200 张，不限量（服务器默认值）· <t:1796256000:R>重置"
    assert lines[3].startswith("**服务器预算**：本月已花费 US$1.25，共 US$5.00（剩余 US$3.75）· <t:")
    blocked = me_text(_usage(daily=0, daily_source="user"), "zh-CN").splitlines()[1]
    assert blocked == "**今天**：已用 2 张，已禁止（上限 0，为你单独设置）· <t:1796256000:R>重置"


def test_quota_me_in_english_reads_as_before() -> None:
    from cogs.quota.render import me_text

    lines = me_text(_usage(), None).splitlines()
    assert lines[0] == "**Your images on this server**"
    assert lines[1] == "**Today**: 2 used, **3** remaining (limit 5, from role <@&42>) · resets <t:1796256000:R>"
    assert lines[2] == "**This month**: 1,200 used, no limit (server default) · resets <t:1796256000:R>"
    assert lines[3].startswith("**Server budget**: $1.25 of $5.00 spent this month ($3.75 remaining) · resets <t:")
    assert lines[4] == "-# Days and months follow the server's time zone (Asia/Shanghai)."


# --- every domain error has Chinese words (bot/messages/) ---------------------------------------------

HAN = re.compile(r"[\u4e00-\u9fff]")


def _domain_errors() -> list[BaseException]:
    from datetime import UTC, datetime

    from bot.imaging.inputs import InputRejected
    from bot.jobs.options import OptionError
    from bot.jobs.service import ShuttingDown, TooManyJobs
    from bot.quota import QuotaExceeded
    from bot.rules import PromptRefused, RuleError
    from tests.unit.cogs.test_error_path import API_ERRORS

    resets = datetime(2030, 1, 1, tzinfo=UTC)
    item = {"what": "The image", "name": "x.png"}
    inputs = [
        InputRejected(code, **item)
        for code in ("not_image", "svg", "empty", "unreadable", "damaged", "no_pixels", "bomb", "incomplete")
    ]
    inputs += [
        InputRejected("colour_format", what="Image 2", name="x.png"),
        InputRejected("file_too_large", size=3 << 20, limit=2 << 20, **item),
        InputRejected("too_many_pixels", max_pixels=40_000_000, **item),
        InputRejected("too_many_pixels", max_pixels=40_000_000, width=9000, height=9000, **item),
        InputRejected("dimensions_too_large", what="The mask", width=9000, height=9000),
        InputRejected("not_on_discord", what="The image"),
        InputRejected("download_failed", what="The image"),
        InputRejected("download_too_large", what="The image", max_bytes=8 << 20),
        InputRejected("mask_marks_nothing"),
        InputRejected("mask_too_detailed"),
        InputRejected("reroll_source_gone"),
    ]
    options = [
        OptionError("size", size="9x9", model="gpt-image-2", reason="too small"),
        OptionError("quality", quality="ultra", model="gpt-image-2", choices="`low`, `high`"),
        OptionError("transparent", model="dall-e-3"),
        OptionError("count", max=10),
        *(OptionError(code) for code in ("background", "format", "jpeg_transparent")),
    ]
    rules = [
        RuleError(code, limit=5, rule_id=3, used=9)
        for code in (
            "empty",
            "too_long",
            "invalid_regex",
            "too_complex",
            "too_complex_total",
            "matches_everything",
            "duplicate",
            "too_many",
            "too_many_regex",
        )
    ]
    quotas = [
        QuotaExceeded("daily", 1, 1, resets, 1),
        QuotaExceeded("monthly", 30, 29, resets, 4),
        QuotaExceeded("budget", 5.0, 5.0, resets, 0.1),
        QuotaExceeded("blocked", 0, 0, resets, 1),
        QuotaExceeded("bot_daily", 40, 40, resets, 1),
        QuotaExceeded("bot_daily", 0, 0, resets, 1),
        QuotaExceeded("bot_budget", 50.0, 49.99, resets, 0.04),
    ]
    return [
        *inputs,
        *options,
        *rules,
        *quotas,
        *API_ERRORS,
        TooManyJobs(3),
        ShuttingDown(),
        PromptRefused(7, "word"),
    ]


@pytest.mark.parametrize("exc", _domain_errors(), ids=lambda e: f"{type(e).__name__}-{getattr(e, 'code', '')}")
def test_every_domain_error_reads_in_chinese_and_its_english_is_unchanged(exc: BaseException) -> None:
    english = messages.user_error(exc)
    chinese = messages.user_error(exc, "zh-CN")
    assert english and chinese and HAN.search(chinese), (english, chinese)
    assert not HAN.search(english)
    assert messages.user_error(exc, "en-US") == english
    # The fallbacks for an unknown code are never what a known code reads.
    assert english not in ("That file can't be used.", "Those options won't work with this model.")


def test_option_and_input_errors_keep_their_english_words() -> None:
    from bot.imaging.inputs import InputRejected
    from bot.jobs.options import OptionError

    assert messages.option_error(OptionError("count", max=10)) == "Count must be between 1 and 10."
    rejected = InputRejected("file_too_large", what="The mask", name="m.png", size=3 << 20, limit=2 << 20)
    assert messages.input_rejected(rejected) == "The mask `m.png` is 3 MB; the limit is 2 MB."
    assert messages.input_rejected(rejected, "zh-CN") == "蒙版 `m.png` 大小为 3 MB；上限是 2 MB。"
    nth = InputRejected("dimensions_too_large", what="Image 2", width=10, height=20)
    assert messages.input_rejected(nth, "zh-CN") == "第 2 张图片太大了（10×20）。"


def test_job_words_in_chinese() -> None:
    assert (
        messages.stopped("cancel", "Ann", kept=1, total=2, locale="zh-CN")
        == "🛑 已被 Ann 取消 · 2 张中已完成并保留 1 张"
    )
    assert messages.stopped("cancel", None, locale="zh-CN") == "🛑 已取消。未计费。"
    assert HAN.search(messages.stopped("shutdown", None, locale="zh-CN"))
    for status, code in ((403, 50013), (413, None), (502, None), (400, 50035)):
        assert HAN.search(messages.undelivered(status, code, "zh-CN"))
    missing = messages.bot_missing_permissions(["attach_files", "embed_links"], "zh-CN")
    assert "**附加文件**、**嵌入链接**" in missing
    english = messages.bot_missing_permissions(["attach_files"])
    assert "missing the **Attach Files** permission." in english
    assert "<@&42>" in messages.not_moderator(42, locale="zh-CN")
