"""Pictures of the playground for the documentation: ``python -m bot.demo.playground.screenshots OUT_DIR``.

Starts a fresh playground in a temporary folder, drives it in headless Chromium (Playwright for Python and
Debian's ``chromium``, as the browser tests do) and writes small WebP pictures: a preview mid-stream, the
result with its buttons, a reply that edits a picture, ``/quota me`` in Chinese, and an animation of a
preview streaming (one frame per state the page showed, not per tick of a clock).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from bot.demo.playground.server import Playground

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT: Any = {"width": 1000, "height": 720}
QUALITY = 72
PROMPT = "a lighthouse on a cliff at sunset"

SHOW_LAST_RESULT = "document.querySelectorAll('.msg img[data-filename^=\"imagebot-\"]').length"


def _webp(png: bytes, path: Path, scale: float = 0.8) -> Image.Image:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((int(img.width * scale), int(img.height * scale)), Image.Resampling.LANCZOS)
    img.save(path, "WEBP", quality=QUALITY, method=6)
    return img


async def _command(page: Any, command: str, **options: str) -> None:
    await page.locator("#input").fill("/" + command.split()[0])
    await page.locator(f'#command-list [data-command="{command}"]').click()
    for name, value in options.items():
        await page.locator(f'#command-form [data-option="{name}"]').fill(value)
    await page.locator("#send").click()


async def _new_src(page: Any, selector: str, seen: set[str]) -> str:
    """Wait until the page shows an image matching ``selector`` that it has not shown before."""
    handle = await page.wait_for_function(
        "([sel, seen]) => { const i = [...document.querySelectorAll(sel)].map(e => e.src)"
        ".find(s => !seen.includes(s)); const img = [...document.querySelectorAll(sel)].find(e => e.src === i); "
        "return (img && img.complete && img.naturalWidth > 0) ? i : false; }",
        arg=[selector, sorted(seen)],
        timeout=60_000,
    )
    src = str(await handle.json_value())
    seen.add(src)
    return src


async def capture(out: Path) -> list[Path]:
    from playwright.async_api import async_playwright, expect

    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        pg = Playground(Path(tmp) / "playground", port=0)
        try:
            await pg.start()
            await pg.wait_bot_ready()
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = await browser.new_context(viewport=VIEWPORT)
                await context.add_init_script("localStorage.setItem('person', 'alice')")
                page = await context.new_page()
                page.set_default_timeout(60_000)
                await page.goto(pg.url)
                await expect(page.locator("body[data-ready=yes]")).to_have_count(1)

                # A preview streaming: one frame per state (thinking, each preview, the result).
                frames: list[Image.Image] = []
                await _command(page, "imagine", prompt=PROMPT)
                await expect(page.locator(".thinking")).to_be_visible()
                frames.append(_webp(await page.screenshot(), out / "_frame.webp"))
                seen: set[str] = set()
                await _new_src(page, '.msg img[data-filename^="preview-"]', seen)
                shot = await page.screenshot()
                frames.append(_webp(shot, out / "playground-preview.webp"))
                written.append(out / "playground-preview.webp")
                await _new_src(page, '.msg img[data-filename^="preview-"]', seen)
                frames.append(_webp(await page.screenshot(), out / "_frame.webp"))
                await page.wait_for_function(f"{SHOW_LAST_RESULT} >= 1")
                await page.locator(".msg").last.get_by_role("button", name="Reroll").wait_for()
                shot = await page.screenshot()
                frames.append(_webp(shot, out / "playground-result.webp"))
                written.append(out / "playground-result.webp")
                (out / "_frame.webp").unlink()
                durations = [700] + [1100] * (len(frames) - 2) + [2500]
                frames[0].save(
                    out / "playground-streaming.webp", "WEBP", save_all=True, append_images=frames[1:],
                    duration=durations, loop=0, quality=QUALITY - 12, method=6,
                )  # fmt: skip
                written.append(out / "playground-streaming.webp")

                # A reply that mentions the bot edits the picture it answers.
                result = page.locator('.msg[data-author="bot"]').last
                await result.hover()
                await result.get_by_role("button", name="Reply").click()
                await page.locator("#input").fill("@imagebot make it night time, with stars")
                await page.locator("#send").click()
                await page.wait_for_function(f"{SHOW_LAST_RESULT} >= 2")
                await page.locator(".msg").last.get_by_role("button", name="Reroll").wait_for()
                await page.mouse.move(0, 0)
                ask = page.locator('.msg[data-author="alice"]').last
                await ask.evaluate("e => { e.scrollIntoView({block: 'start'}); e.parentElement.scrollTop -= 40; }")
                written.append(out / "playground-reply-edit.webp")
                _webp(await page.screenshot(), written[-1])

                # /quota me, as a person who reads Chinese.
                await page.locator('[data-person="bob"]').click()
                await expect(page.locator("body[data-ready=yes]")).to_have_count(1)
                await page.locator("#language").select_option("zh-CN")
                await expect(page.locator("#send")).to_have_text("发送")
                await page.locator("#input").fill("/quota")
                await page.locator('#command-list [data-command="quota me"]').click()
                await page.locator("#send").click()
                await page.locator(".msg.ephemeral").last.wait_for()
                await page.mouse.move(0, 0)
                written.append(out / "playground-quota-zh.webp")
                _webp(await page.screenshot(), written[-1])
                await browser.close()
        finally:
            await pg.stop()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.demo.playground.screenshots", description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/assets"), help="folder (docs/assets)")
    args = parser.parse_args(argv)
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("needs Playwright for Python: pip install -e '.[test]'", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print("needs Debian's chromium: sudo apt-get install -y chromium", file=sys.stderr)
        return 2
    if (
        shutil.which("fc-list")
        and not subprocess.run(
            ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False
        ).stdout.strip()
    ):
        print(
            "warning: no Chinese font: the Chinese picture shows boxes (apt-get install fonts-noto-cjk)",
            file=sys.stderr,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(capture(args.out)):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
