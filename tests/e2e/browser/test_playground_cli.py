"""``python -m bot playground`` as people start it: one URL printed, the caller's ``.env`` ignored, ``--reset``,
the real API (here the built-in service requiring a key, standing in for OpenAI) with its warning, and a page
that refuses other sites and other host names."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.demo.images import FakeImagesAPI
from tests.e2e.browser.conftest import CHROMIUM_ARGS, REPO_ROOT, SCREENSHOTS, skip_unless_browser

pytestmark = pytest.mark.timeout(150)
KEY = "sk-real-looking-key-0123456789"


async def _read_url(proc: asyncio.subprocess.Process, seen: list[str]) -> str:
    assert proc.stdout is not None
    while line := (await proc.stdout.readline()).decode():
        seen.append(line)
        if m := re.search(r"open (http://\S+)", line):
            return m.group(1)
    raise AssertionError("the playground exited without a URL:\n" + "".join(seen))


async def test_the_command_with_a_real_key_warns_and_uses_that_api(tmp_path: Path) -> None:
    path = skip_unless_browser()
    from playwright.async_api import async_playwright, expect

    api = FakeImagesAPI(api_key=KEY)
    base = await api.start()
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    # The caller's own deployment settings, which the playground must not use.
    (cwd / ".env").write_text("DISCORD_TOKEN=the-real-token\nDATABASE_URL=postgresql://nowhere/db\n")
    folder = tmp_path / "pg"
    folder.mkdir()
    (folder / "old-state").write_text("from before")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "IMAGEBOT_"))}
    env.update({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base, "PYTHONPATH": str(REPO_ROOT)})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "playground", "--port", "0", "--dir", str(folder), "--reset",
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    seen: list[str] = []
    try:
        url = await asyncio.wait_for(_read_url(proc, seen), 60)
        assert url.startswith("http://127.0.0.1:")
        assert not (folder / "old-state").exists()
        assert any("cost money" in line for line in seen)
        async with aiohttp.ClientSession() as http:
            async with http.post(
                url + "api/action", json={"kind": "locale", "person": "alice", "locale": "zh-CN"},
                headers={"Origin": "http://evil.example"},
            ) as refused:  # fmt: skip
                assert refused.status == 403
            async with http.get(url, headers={"Host": "rebound.example"}) as rebound:
                assert rebound.status == 403
            async with http.get(url) as page_itself:
                assert page_itself.status == 200
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
            page: Any = await browser.new_page()
            page.set_default_timeout(20_000)
            try:
                await page.goto(url)
                await expect(page.locator("#banner.real")).to_contain_text("costs money")
                await expect(page.locator("#banner")).to_contain_text(base)
                await page.locator("#input").fill("/imagine")
                await page.locator('#command-list [data-command="imagine"]').click()
                await page.locator('#command-form [data-option="prompt"]').fill("a paid picture")
                await page.locator("#send").click()
                await expect(page.locator('.msg img[data-filename^="imagebot-"]')).to_be_visible(timeout=30_000)
            except Exception:
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SCREENSHOTS / "test_the_command_with_a_real_key.png"))
                raise
            finally:
                await browser.close()
        assert api.billed == 1 and api.validation_errors == []
        assert api.requests and all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in api.requests)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 15)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await api.stop()
    assert proc.returncode == 0, "".join(seen)
    saved = (folder / "messages.json").read_text()  # the history, for the next start
    assert "a paid picture" in saved and list((folder / "cdn").glob("*/imagebot-*"))
    log = (folder / "bot.log").read_text(errors="replace")
    assert "Traceback" not in log and "the-real-token" not in log


async def test_a_fresh_start_shows_a_first_image_with_no_other_step(tmp_path: Path) -> None:
    """What a newcomer sees: no .env, no key, the command, the URL, and a picture arriving in the page."""
    path = skip_unless_browser()
    from playwright.async_api import async_playwright, expect

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "IMAGEBOT_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "playground", "--port", "0",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    seen: list[str] = []
    try:
        url = await asyncio.wait_for(_read_url(proc, seen), 60)
        assert (tmp_path / ".imagebot-playground" / "imagebot.db").is_file()  # its one folder, by default
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
            page: Any = await browser.new_page()
            fetched: list[str] = []
            page.on("request", lambda request: fetched.append(request.url))
            try:
                await page.goto(url)
                await expect(page.locator("#banner")).not_to_have_class("real")
                await expect(page.locator(".welcome")).to_contain_text("Welcome to #general")
                await expect(page.locator('.msg img[data-filename^="imagebot-"]')).to_be_visible(timeout=30_000)
                # Nothing from the internet: every script, style, picture and socket is the playground's own.
                origin = url.rstrip("/")
                assert fetched and all(
                    u.startswith((origin + "/", origin.replace("http", "ws", 1) + "/")) for u in fetched
                )
            except Exception:
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SCREENSHOTS / "test_a_fresh_start.png"))
                raise
            finally:
                await browser.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 15)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, "".join(seen)
