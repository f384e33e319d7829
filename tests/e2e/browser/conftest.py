"""Fixtures of the browser tests of the playground: headless Chromium (Debian's ``chromium``) driven by
Playwright for Python.

``chromium_executable()`` finds the browser, installing Debian's package once when running as root (as CI
does; Playwright's own download cannot run here), or skips with the one command that enables the tests.
The ``playground`` fixture starts a fresh playground (local Discord, built-in image service, the real bot
process) in a temporary folder; ``browser`` is one headless Chromium per test; ``open_page`` opens the
playground as one person, and saves a screenshot of every page it opened when the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.demo.playground.server import Playground

REPO_ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "playground"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ENABLE = "sudo apt-get install -y chromium && .venv/bin/pip install -e '.[test]'"

OpenPage = Callable[..., Awaitable[Any]]


@cache
def chromium_executable() -> str | None:
    """The browser's path, or None (then ``skip_reason()`` says why)."""
    found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env, timeout=1200)
        return shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    return None


def skip_unless_browser() -> str:
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip(f"browser tests need Playwright for Python and Chromium; enable them with: {ENABLE}")
    path = chromium_executable()
    if path is None:
        why = "installing it failed" if os.geteuid() == 0 else "only root may install it"
        pytest.skip(f"browser tests need Debian's chromium, which is missing ({why}); enable them with: {ENABLE}")
    return path


@pytest.fixture
async def playground(tmp_path: Path) -> AsyncIterator[Playground]:
    skip_unless_browser()
    pg = Playground(tmp_path / "playground", port=0)
    try:
        await pg.start()
        await pg.wait_bot_ready()
        yield pg
    finally:
        await pg.stop()
    log = (tmp_path / "playground" / "bot.log").read_text(errors="replace")
    problems = []
    if pg.fd.validation_errors:
        problems.append("schema violations:\n  " + "\n  ".join(pg.fd.validation_errors[:10]))
    if "Traceback" in log:
        problems.append("Traceback in the bot log:\n" + "\n".join(log.splitlines()[-60:]))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    path = skip_unless_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def open_page(browser: Any, playground: Playground, request: pytest.FixtureRequest) -> AsyncIterator[OpenPage]:
    """``await open_page("alice", locale=None)``: a new tab showing the playground as that person."""
    pages: list[tuple[str, Any]] = []

    async def opener(person: str = "alice", *, width: int = 1280, height: int = 860) -> Any:
        from playwright.async_api import expect

        context = await browser.new_context(viewport={"width": width, "height": height})
        await context.add_init_script(f"localStorage.setItem('person', {person!r})")
        page = await context.new_page()
        page.set_default_timeout(20_000)
        await page.goto(playground.url)
        await expect(page.locator("body[data-ready=yes]")).to_have_count(1)
        pages.append((person, page))
        return page

    yield opener
    report = getattr(request.node, "rep_call", None)
    for i, (person, page) in enumerate(pages):
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / f"{request.node.name}-{i}-{person}.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failed test: {shot}")
        await page.context.close()
