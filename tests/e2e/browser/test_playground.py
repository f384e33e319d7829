"""The playground in a real browser: headless Chromium on the page, the real bot process behind it.

Each test starts a fresh playground (``tests/e2e/browser/conftest.py``) and works the page as people would:
typing slash commands, clicking buttons, replying, using the message menu and modals. Waiting is
Playwright's ``expect`` (it retries until the state is there), never a sleep.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.demo.playground.server import Playground
from tests.e2e.browser.conftest import OpenPage

pytestmark = pytest.mark.timeout(150)

PREVIEW = 'img[data-filename^="preview-"]'
RESULT = 'img[data-filename^="imagebot-"]'


def expect(locator: Any) -> Any:
    from playwright.async_api import expect as pw_expect

    return pw_expect(locator)


async def run_command(page: Any, command: str, **options: str) -> None:
    """Type ``/command`` in the composer, pick it from the list, fill its options and send it."""
    await page.locator("#input").fill("/" + command.split()[0])
    await page.locator(f'#command-list [data-command="{command}"]').click()
    for name, value in options.items():
        field = page.locator(f'#command-form [data-option="{name}"]')
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await page.locator("#send").click()
    await expect(page.locator("#command-chip")).to_be_hidden()


def answer_to(page: Any, text: str) -> Any:
    """The bot's message whose result or progress mentions ``text`` (its prompt)."""
    return page.locator('.msg[data-author="bot"]', has_text=text).last


def slow_stream(playground: Playground, seconds: float) -> None:
    """Keep each preview frame on screen for ``seconds`` (the built-in service's own pacing knob), so that a
    busy machine cannot make a check miss a frame."""
    playground.images.delay_between_events = seconds


async def test_imagine_shows_a_partial_frame_then_the_final_image(open_page: OpenPage, playground: Playground) -> None:
    slow_stream(playground, 3.0)
    page = await open_page("alice")
    await run_command(page, "imagine", prompt="a lighthouse at dusk")
    msg = answer_to(page, "a lighthouse at dusk")
    await expect(msg.locator(PREVIEW).first).to_be_visible()
    await expect(msg.locator(RESULT).first).to_be_visible(timeout=30_000)
    await expect(msg.locator(PREVIEW)).to_have_count(0)
    await expect(msg.get_by_role("button", name="Reroll")).to_be_visible()
    await expect(msg.locator(".pre")).to_contain_text("Alice used /imagine")


async def test_reroll_makes_another_image_and_delete_removes_it(open_page: OpenPage) -> None:
    page = await open_page("alice")
    await run_command(page, "imagine", prompt="a red bicycle")
    first = answer_to(page, "a red bicycle")
    await expect(first.locator(RESULT).first).to_be_visible(timeout=30_000)
    await first.get_by_role("button", name="Reroll").click()
    results = page.locator('.msg[data-author="bot"]').filter(has=page.locator(RESULT))
    await expect(results).to_have_count(2, timeout=30_000)
    second = results.last
    await second.get_by_role("button", name="Delete").click()
    await expect(results).to_have_count(1)


async def test_cancel_while_streaming(open_page: OpenPage, playground: Playground) -> None:
    slow_stream(playground, 60.0)  # the result would come long after the test's timeout
    page = await open_page("alice")
    await run_command(page, "imagine", prompt="a slow sunrise")
    msg = answer_to(page, "a slow sunrise")
    await expect(msg.locator(PREVIEW).first).to_be_visible()
    await msg.get_by_role("button", name="Cancel").click()
    await expect(msg.locator(".content")).to_contain_text("🛑 Cancelled", timeout=20_000)
    await expect(msg.get_by_role("button", name="Cancel")).to_have_count(0)
    await expect(msg.locator(RESULT)).to_have_count(0)


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "cat.png"
    img = Image.new("RGB", (256, 256), (200, 120, 40))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    path.write_bytes(buf.getvalue())
    return path


async def test_reply_to_an_uploaded_picture_edits_it(open_page: OpenPage, tmp_path: Path) -> None:
    page = await open_page("alice")
    await page.locator("#file-input").set_input_files(str(_photo(tmp_path)))
    await expect(page.locator("#files-bar")).to_contain_text("cat.png")
    await page.locator("#input").fill("my cat")
    await page.locator("#send").click()
    photo = page.locator('.msg[data-author="alice"]', has_text="my cat")
    await expect(photo.locator('img[data-filename="cat.png"]')).to_be_visible()
    await photo.hover()
    await photo.get_by_role("button", name="Reply").click()
    await page.locator("#input").fill("@imagebot make it night time")
    await page.locator("#send").click()
    edited = page.locator('.msg[data-author="bot"]').filter(has=page.locator(RESULT))
    await expect(edited).to_have_count(1, timeout=30_000)
    await expect(edited.locator(".reply-ref")).to_contain_text("Alice")


async def test_edit_image_menu_and_its_modal(open_page: OpenPage, tmp_path: Path) -> None:
    page = await open_page("alice")
    await page.locator("#file-input").set_input_files(str(_photo(tmp_path)))
    await page.locator("#input").fill("a photo")
    await page.locator("#send").click()
    photo = page.locator('.msg[data-author="alice"]', has_text="a photo")
    await expect(photo.locator("img")).to_be_visible()
    await photo.hover()
    await photo.get_by_role("button", name="Apps").click()
    await page.get_by_role("menuitem", name="Edit image").click()
    dialog = page.locator("dialog#modal")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#modal-title")).to_have_text("Edit image")
    field = dialog.locator("[data-field]").first
    await field.fill("give the cat a tiny hat")
    await dialog.locator("#modal-submit").click()
    await expect(dialog).to_be_hidden()
    result = page.locator('.msg[data-author="bot"]').filter(has=page.locator(RESULT))
    await expect(result).to_have_count(1, timeout=30_000)
    # The same menu on a right-click, on the bot's own result this time.
    await result.first.click(button="right")
    await page.get_by_role("menuitem", name="Edit image").click()
    await dialog.locator("[data-field]").first.fill("make the hat blue")
    await dialog.locator("#modal-submit").click()
    await expect(result).to_have_count(2, timeout=30_000)


async def test_daily_limit_refusal_is_private(open_page: OpenPage) -> None:
    mod = await open_page("mod")
    await run_command(mod, "quota set", user=await _person_id(mod, "alice"), daily="1")
    await expect(mod.locator(".msg.ephemeral").last).to_be_visible()
    alice = await open_page("alice")
    bob = await open_page("bob")
    await run_command(alice, "imagine", prompt="first of the day")
    await expect(answer_to(alice, "first of the day").locator(RESULT).first).to_be_visible(timeout=30_000)
    await run_command(alice, "imagine", prompt="second of the day")
    refusal = alice.locator(".msg.ephemeral").last
    await expect(refusal).to_contain_text("Only you can see this")
    await expect(refusal.locator(".content")).not_to_be_empty()
    # Barrier: bob's page has seen alice's first result, which came before the refusal.
    await expect(answer_to(bob, "first of the day").locator(RESULT).first).to_be_visible()
    await run_command(bob, "quota me")
    await expect(bob.locator(".msg.ephemeral")).to_have_count(1)
    await expect(bob.locator(".msg.ephemeral")).not_to_contain_text("second of the day")
    await expect(alice.locator(".msg.ephemeral")).to_have_count(1)


async def _person_id(page: Any, key: str) -> str:
    return str(await page.evaluate(f"state.snap.people.find(p => p.key === {key!r}).id"))


async def test_a_chinese_speaker_sees_chinese_commands_and_answers(open_page: OpenPage) -> None:
    page = await open_page("bob")
    await page.locator("#language").select_option("zh-CN")
    await expect(page.locator("#send")).to_have_text("发送")
    await page.locator("#input").fill("/quota")
    await expect(page.locator('#command-list [data-command="quota me"]')).to_contain_text("配额")
    await page.locator('#command-list [data-command="quota me"]').click()
    await page.locator("#send").click()
    answer = page.locator(".msg.ephemeral").last
    await expect(answer).to_contain_text("只有您可以看到")
    await expect(answer.locator(".content")).to_contain_text("今天")


async def test_a_second_tab_sees_the_same_messages_live(open_page: OpenPage, playground: Playground) -> None:
    slow_stream(playground, 3.0)
    first = await open_page("alice")
    second = await open_page("bob")
    await run_command(first, "imagine", prompt="a paper boat")
    other = answer_to(second, "a paper boat")
    await expect(other.locator(PREVIEW).first).to_be_visible()
    await expect(other.locator(RESULT).first).to_be_visible(timeout=30_000)
    await first.locator("#input").fill("hello from alice")
    await first.locator("#send").click()
    await expect(second.locator('.msg[data-author="alice"]', has_text="hello from alice")).to_be_visible()


async def test_autocomplete_offers_the_bots_suggestions(open_page: OpenPage) -> None:
    page = await open_page("mod")
    await page.locator("#input").fill("/quota")
    await page.locator('#command-list [data-command="quota timezone"]').click()
    await page.locator('#command-form [data-option="tz"]').press_sequentially("berl")
    await expect(page.locator('#command-form datalist option[value="Europe/Berlin"]')).to_have_count(1)
    await page.locator('#command-form [data-option="tz"]').fill("Europe/Berlin")
    await page.locator("#send").click()
    await expect(page.locator('.msg[data-author="bot"]').last).to_contain_text("Europe/Berlin")


async def test_an_attachment_option_takes_a_file_from_the_picker(open_page: OpenPage, tmp_path: Path) -> None:
    page = await open_page("bob")
    await page.locator("#input").fill("/edit")
    await page.locator('#command-list [data-command="edit"]').click()
    await page.locator('#command-form [data-option="image"]').set_input_files(str(_photo(tmp_path)))
    await page.locator('#command-form [data-option="prompt"]').fill("paint it blue")
    await page.locator('#command-form [data-option="quality"]').select_option("low")
    await page.locator("#send").click()
    answer = page.locator('.msg[data-author="bot"]').filter(has=page.locator(RESULT))
    await expect(answer).to_have_count(1, timeout=30_000)
    await expect(answer.locator(".pre")).to_contain_text("Bob used /edit")
    await expect(answer.locator(".embed")).to_contain_text("low")


async def test_a_rule_for_other_channels_lets_the_age_restricted_one_through(open_page: OpenPage) -> None:
    mod = await open_page("mod")
    await run_command(mod, "quota rule add", text="dragon", sfw_only="true")
    await expect(mod.locator(".msg.ephemeral").last).to_contain_text("dragon")
    alice = await open_page("alice")
    await run_command(alice, "imagine", prompt="a friendly dragon")
    refusal = alice.locator(".msg.ephemeral").last
    await expect(refusal).to_contain_text("Only you can see this")
    await expect(alice.locator(RESULT)).to_have_count(0)
    await alice.locator('#channels [data-channel="after-dark"]').click()
    await expect(alice.locator("#channel-badge")).to_contain_text("Age-restricted")
    await expect(alice.locator(".msg")).to_have_count(0)
    await run_command(alice, "imagine", prompt="a friendly dragon")
    await expect(answer_to(alice, "a friendly dragon").locator(RESULT).first).to_be_visible(timeout=30_000)


async def test_commands_for_server_managers_are_listed_for_the_moderator_only(open_page: OpenPage) -> None:
    alice = await open_page("alice")
    mod = await open_page("mod")
    await mod.locator("#input").fill("/apikey")
    await expect(mod.locator("#command-list .cmd[data-command^='apikey']").first).to_be_visible()
    await alice.locator("#input").fill("/apikey")
    await expect(alice.locator("#command-list")).to_contain_text("No matching command")
    await alice.locator("#input").fill("/imagine")
    await expect(alice.locator('#command-list [data-command="imagine"]')).to_be_visible()


async def test_a_deferred_answer_shows_the_bot_thinking(open_page: OpenPage, playground: Playground) -> None:
    page = await open_page("alice")
    playground.fd.latency = 1.5  # the local Discord answers each call of the bot late: "thinking" lasts
    await run_command(page, "imagine", prompt="a slow answer")
    await expect(page.locator(".msg .thinking")).to_have_text("imagebot is thinking…")
    await expect(page.locator(".msg .thinking")).to_have_count(0, timeout=30_000)
    await expect(answer_to(page, "a slow answer")).to_be_visible()


async def test_a_bot_that_answers_too_late_is_reported_as_in_discord(
    open_page: OpenPage, playground: Playground
) -> None:
    page = await open_page("bob")
    playground.fd.latency = 4.0  # every call of the bot reaches the local Discord after Discord's 3 seconds
    await run_command(page, "quota me")
    await expect(page.locator("#toast")).to_have_text("The application did not respond")
    await expect(page.locator(".msg.ephemeral")).to_have_count(1, timeout=30_000)  # still taken, late
