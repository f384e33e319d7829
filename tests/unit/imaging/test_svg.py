"""SVG results: cleaning (hostile documents refused or defused) and rendering in a process of its own."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from bot.imaging.svg import MAX_SVG_BYTES, UnsafeSvg, render_svg_sync, sanitize_svg_sync

NS = 'xmlns="http://www.w3.org/2000/svg"'


@pytest.mark.parametrize(
    "doc",
    [
        # an external entity (XXE)
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
        # billion laughs
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>',
        # any DTD at all
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        # absurd proportions, invalid or huge viewBoxes
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000000000 1"/>',
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 -5 10"/>',
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1e300 1e300"/>',
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 nan 10"/>',
        # not SVG, not XML
        b"<html><body>502 Bad Gateway</body></html>",
        b"<svg",
        b"<svg " + b"x" * (MAX_SVG_BYTES + 1),
    ],
)
def test_hostile_or_broken_documents_are_refused(doc: bytes) -> None:
    with pytest.raises(UnsafeSvg):
        sanitize_svg_sync(doc)


def test_scripts_handlers_foreign_content_and_outside_references_are_removed() -> None:
    doc = (
        f'<svg {NS} xmlns:xlink="http://www.w3.org/1999/xlink" width="200" height="100">'
        '<script>alert(1)</script><rect width="200" height="100" fill="red" onclick="steal()"/>'
        '<image xlink:href="file:///etc/passwd"/><image href="https://tracker.invalid/p.png"/>'
        '<use href="#ok"/><circle id="ok" r="5" fill="url(https://x.invalid/f#g)"/>'
        '<style>@import url("https://x.invalid/a.css"); rect { fill: url(#grad) }</style>'
        '<foreignObject><p xmlns="http://www.w3.org/1999/xhtml">hi</p></foreignObject></svg>'
    ).encode()
    clean = sanitize_svg_sync(doc)
    for banned in (b"script", b"onclick", b"file:", b"https:", b"foreignObject", b"@import", b"xhtml"):
        assert banned not in clean, banned
    assert b'href="#ok"' in clean and b"url(#grad)" in clean  # references inside the document stay
    assert b'width="1024"' in clean and b'height="512"' in clean and b'viewBox="0 0 200 100"' in clean


def test_rendering_is_bounded_and_matches_the_drawing() -> None:
    doc = f'<svg {NS} viewBox="0 0 100000000 50000000"><rect width="100%" height="100%" fill="#36c"/></svg>'
    started = time.monotonic()
    png = render_svg_sync(sanitize_svg_sync(doc.encode()))
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (1024, 512)
        assert im.convert("RGB").getpixel((512, 256)) == (0x33, 0x66, 0xCC)
    assert time.monotonic() - started < 10


def test_a_render_over_its_time_is_stopped() -> None:
    heavy = "".join(
        f'<circle cx="{i % 500}" cy="{i // 500}" r="300" fill="#{i % 255:02x}3366" filter="url(#b)"/>'
        for i in range(4000)
    )
    doc = (
        f'<svg {NS} viewBox="0 0 500 500"><defs><filter id="b"><feGaussianBlur stdDeviation="80"/>'
        f"</filter></defs>{heavy}</svg>"
    )
    clean = sanitize_svg_sync(doc.encode())
    started = time.monotonic()
    with pytest.raises(UnsafeSvg, match="longer than"):
        render_svg_sync(clean, timeout=0.5)
    assert time.monotonic() - started < 5
