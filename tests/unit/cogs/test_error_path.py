"""The one error path (``cogs/_errors.py`` + ``bot/messages/``): every error type gets words of its own, and
raw exception text (the service's, a gateway's, a bug's) never reaches a user."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from discord import app_commands

from bot import messages
from bot.images_api import errors as api
from bot.imaging.inputs import InputRejected
from bot.jobs.options import OptionError
from bot.jobs.service import ShuttingDown, TooManyJobs
from bot.quota import QuotaExceeded
from bot.rules import PromptRefused, RuleError
from cogs._errors import BotLacksPermissions, NotModerator, error_text

RAW = "RAW-TEXT sk-secret Traceback (most recent call last) litellm.BadRequestError: AzureException {'error': 1}"

API_ERRORS = [
    api.InvalidRequest(RAW, status=400, param="size"),
    api.ContentBlocked(RAW, status=400, code="moderation_blocked"),
    api.AuthenticationFailed(RAW, status=401),
    api.PermissionDenied(RAW, status=403),
    api.VerificationRequired(RAW, status=403),
    api.RateLimited(RAW, status=429),
    api.InsufficientQuota(RAW, status=429),
    api.ModelUnavailable(RAW, status=503),
    api.EditsNotSupported(RAW, status=501),
    api.MalformedResponse(RAW),
    api.ServerError(RAW, status=500),
    api.ConnectionFailed(RAW),
    api.DownloadFailed(RAW),
    api.StreamError(RAW),
    api.StreamStalled(RAW),
    api.BrokenImage(RAW),
    api.ImagesAPIError(RAW),
]


@pytest.mark.parametrize("exc", API_ERRORS, ids=lambda e: type(e).__name__)
def test_every_api_error_is_worded_without_the_services_text(exc: Exception) -> None:
    text = error_text(exc)
    assert text and "RAW-TEXT" not in text and "sk-secret" not in text and "Traceback" not in text
    assert text != messages.GENERIC  # each has words of its own
    wrapped = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    wrapped.original = exc  # as discord.py hands a command's exception to the tree
    assert error_text(wrapped) == text


def test_api_errors_are_told_apart() -> None:
    words = {type(e).__name__: error_text(e) for e in API_ERRORS}
    assert "safety" in words["ContentBlocked"] and "quota" in words["ContentBlocked"]
    assert "out of credit" in words["InsufficientQuota"]
    assert "IMAGE_MODEL" in words["ModelUnavailable"]
    assert "editing" in words["EditsNotSupported"]
    assert words["RateLimited"] != words["ServerError"] != words["ConnectionFailed"]


def test_domain_errors_have_their_own_words() -> None:
    resets = datetime(2030, 1, 1, tzinfo=UTC)
    cases: list[tuple[BaseException, str]] = [
        (QuotaExceeded("daily", 2, 2, resets, 1), "limit of 2 images today"),
        (QuotaExceeded("budget", 5.0, 5.0, resets, 0.1), "monthly image budget"),
        (QuotaExceeded("bot_daily", 3, 2, resets, 2), "limit of 3 images a day per person, counted in all"),
        (QuotaExceeded("bot_budget", 50.0, 49.99, resets, 0.04), "budget for this month, in all its servers"),
        (TooManyJobs(3), "3 images in progress"),
        (ShuttingDown(), "restarting"),
        (OptionError("count", max=10), "Count must be between 1 and 10."),
        (InputRejected("not_image", what="The image", name="x.txt"), "The image `x.txt` isn't an image."),
        (PromptRefused(7, "word"), "moderators don't allow"),
        (NotModerator(manager_role_id=42), "<@&42>"),
        (NotModerator(admins_only=True), "Manage Server"),
        (BotLacksPermissions(["attach_files", "embed_links"]), "**Attach Files**, **Embed Links**"),
        (app_commands.NoPrivateMessage(), "servers only"),
    ]
    for exc, expected in cases:
        assert expected in error_text(exc), (exc, error_text(exc))


def test_a_refused_prompt_names_no_rule() -> None:
    text = error_text(PromptRefused(7, "regex"))
    assert "7" not in text and "regex" not in text


def test_rule_errors_are_worded_for_moderators() -> None:
    codes = ("empty", "too_long", "invalid_regex", "too_complex", "too_complex_total", "matches_everything")
    texts = {code: messages.rule_error(RuleError(code, limit=5, rule_id=3, used=9)) for code in codes}
    assert len(set(texts.values())) == len(codes)  # each reason its own words
    assert "_" not in "".join(texts.values())  # no code leaks through
    assert messages.rule_error(RuleError("unknown-code")) == "That rule can't be added."


def test_a_bug_gets_the_generic_words_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        text = error_text(RuntimeError(RAW))
    assert text == messages.GENERIC
    assert "unexpected error" in caplog.text and "RAW-TEXT" in caplog.text  # the details are for the log


def test_other_check_failures_and_bad_values() -> None:
    assert error_text(app_commands.CheckFailure(RAW)) == messages.NOT_HERE
    bad = app_commands.TransformerError.__new__(app_commands.TransformerError)
    bad.value = "x`y"
    assert "x'y" in error_text(bad) and RAW not in error_text(bad)


def test_a_refusal_is_worded_from_its_message_in_the_readers_language() -> None:
    from cogs._errors import Refused

    english = error_text(Refused(messages.EMPTY_PROMPT))
    assert english == messages.text(None, messages.EMPTY_PROMPT) and "prompt" in english
    chinese = error_text(Refused(messages.EMPTY_PROMPT), "zh_CN")
    assert chinese == messages.text("zh_CN", messages.EMPTY_PROMPT) and chinese != english
