"""SVG results: made safe to pass on, and rendered to a PNG for the embed (Discord shows no SVG inline).

An SVG is untrusted text from the image service (or a gateway on the way). ``sanitize_svg_sync`` parses it
with ``defusedxml`` (no DTD, no entities, no external references: an XXE or a billion-laughs document is
refused), drops scripts, event handlers, foreign content and every reference that leaves the document,
checks its size and its proportions, and writes it back out; that cleaned SVG is what the bot attaches.
``render_svg_sync`` draws it with resvg (no browser, no network) in a separate process that is killed when
it runs over ``RENDER_TIMEOUT`` or tries to use more than ``RENDER_MEMORY`` bytes, at a bounded pixel size.
Everything here blocks: the coroutines run it off the event loop.
"""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = [
    "MAX_SVG_BYTES",
    "UnsafeSvg",
    "render_svg",
    "render_svg_sync",
    "sanitize_svg",
    "sanitize_svg_sync",
]

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
MAX_SVG_BYTES = 4 * 1024 * 1024
MAX_ELEMENTS = 20_000
MAX_ASPECT = 16.0
RENDER_SIDE = 1024  # the PNG's longest side
RENDER_TIMEOUT = 15.0  # seconds, start-up of the render process included
RENDER_MEMORY = 1024 * 1024 * 1024

# Elements that run code or embed another language: never passed on.
_DROP = frozenset({"script", "foreignObject", "iframe", "object", "embed", "handler", "listener"})
_LOCAL_REF = re.compile(r"^\s*#")
_EMBEDDED_RASTER = re.compile(r"^\s*data:image/(png|jpeg|gif|webp);base64,", re.IGNORECASE)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(?!#)[^)]*\)", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import[^;]*;?", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(px)?\s*$")


class UnsafeSvg(ValueError):
    """The SVG is refused: ``str()`` says why (for the log); ``bot/messages/`` words it for people."""


def sanitize_svg_sync(data: bytes) -> bytes:
    """The cleaned SVG (UTF-8), or ``UnsafeSvg``."""
    if len(data) > MAX_SVG_BYTES:
        raise UnsafeSvg(f"SVG of {len(data)} bytes (at most {MAX_SVG_BYTES})")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeSvg(f"SVG declares a DTD, entities or external references ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise UnsafeSvg(f"SVG does not parse ({exc})") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise UnsafeSvg(f"root element is {root.tag!r}, not an SVG")
    count = 0
    for parent in root.iter():
        count += 1
        if count > MAX_ELEMENTS:
            raise UnsafeSvg(f"SVG has more than {MAX_ELEMENTS} elements")
        for child in list(parent):
            if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{SVG_NS}}}"):
                parent.remove(child)  # comments, processing instructions, other namespaces (XHTML...)
            elif child.tag.split("}", 1)[1] in _DROP:
                parent.remove(child)
        _clean_attributes(parent)
        if parent.tag == f"{{{SVG_NS}}}style" and parent.text:
            parent.text = _CSS_URL.sub("none", _CSS_IMPORT.sub("", parent.text))
    _bound_size(root)
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _clean_attributes(el: ET.Element) -> None:
    for name in list(el.attrib):
        local = name.split("}", 1)[-1]
        value = el.attrib[name]
        if local.lower().startswith("on"):
            del el.attrib[name]  # event handlers
        elif local == "href" and not (_LOCAL_REF.match(value) or _EMBEDDED_RASTER.match(value)):
            del el.attrib[name]  # files, URLs, nested SVG documents
        elif "url(" in value.lower():
            el.attrib[name] = _CSS_URL.sub("none", value)


def _length(value: str | None) -> float | None:
    match = _NUMBER.match(value or "")
    return float(match.group(1)) if match else None


def _bound_size(root: ET.Element) -> None:
    """Refuse absurd proportions; give the root a bounded intrinsic size, keeping its coordinates."""
    box: list[float] | None = None
    raw_box = root.attrib.get("viewBox")
    if raw_box is not None:
        try:
            box = [float(x) for x in raw_box.replace(",", " ").split()]
        except ValueError:
            raise UnsafeSvg(f"viewBox {raw_box[:40]!r} is not four numbers") from None
        if len(box) != 4 or not all(math.isfinite(v) and abs(v) < 1e12 for v in box) or box[2] <= 0 or box[3] <= 0:
            raise UnsafeSvg(f"viewBox {raw_box[:40]!r} is invalid")
    width, height = _length(root.attrib.get("width")), _length(root.attrib.get("height"))
    if box is None:
        if not (width and height):
            width = height = 1024.0
        box = [0.0, 0.0, width or 1024.0, height or 1024.0]
        root.set("viewBox", f"0 0 {width:g} {height:g}")
    w, h = (width, height) if width and height else (box[2], box[3])
    aspect = w / h
    if not 1 / MAX_ASPECT <= aspect <= MAX_ASPECT:
        raise UnsafeSvg(f"SVG proportions {w:g}x{h:g} are beyond 1:{MAX_ASPECT:g}")
    scale = RENDER_SIDE / max(w, h)
    root.set("width", str(max(1, round(w * scale))))
    root.set("height", str(max(1, round(h * scale))))


# Run with ``python -I -c``: a fresh interpreter that imports nothing of the bot (nor its ``__main__``).
_CHILD = f"""
import sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, ({RENDER_MEMORY}, {RENDER_MEMORY}))
except Exception:
    pass
import resvg_py
svg = sys.stdin.buffer.read().decode("utf-8")
sys.stdout.buffer.write(bytes(resvg_py.svg_to_bytes(svg_string=svg)))
"""


def render_svg_sync(clean_svg: bytes, timeout: float = RENDER_TIMEOUT) -> bytes:
    """A PNG of a cleaned SVG (``sanitize_svg_sync``'s output), or ``UnsafeSvg`` on failure/timeout.

    The renderer runs in a process of its own, so a document that renders too long is killed, and one
    that crashes or exhausts memory takes only that process with it."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD],
            input=clean_svg,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UnsafeSvg(f"SVG rendering took longer than {timeout:g}s") from None
    if done.returncode != 0 or not done.stdout.startswith(b"\x89PNG"):
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise UnsafeSvg(f"SVG does not render (exit {done.returncode}: {last[0][:200]})")
    return done.stdout


async def sanitize_svg(data: bytes) -> bytes:
    return await asyncio.to_thread(sanitize_svg_sync, data)


async def render_svg(clean_svg: bytes) -> bytes:
    return await asyncio.to_thread(render_svg_sync, clean_svg)
