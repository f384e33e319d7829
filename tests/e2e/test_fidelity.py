"""End to end, the real bot against the fakes: what goes to the Images API is the user's picture in 8-bit
(a 16-bit grey PNG is not sent almost white), and what comes back is delivered only if it is a whole image
(a truncated final PNG is a refunded failure, not "✅ Done" and a broken file)."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image

from bot.demo.discord import FakeDiscord
from tests.helpers.e2e import files_of, final_files, has_result, job_rows, poll, results_of
from tests.plugins.rig import Rig

W, H = 64, 32


def grey16() -> tuple[bytes, list[int]]:
    """A 16-bit greyscale PNG (a horizontal ramp over the whole 16-bit range) and its pixel values."""
    values = [x * 65535 // (W - 1) for _ in range(H) for x in range(W)]
    im = Image.new("I;16", (W, H))
    im.putdata(values)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = buf.getvalue()
    assert data[24] == 16 and Image.open(io.BytesIO(data)).mode == "I;16"
    return data, values


def assert_sent_as_8_bit(data: bytes, values: list[int]) -> None:
    """The image part the fake API received: an 8-bit RGB image whose grey is the 16-bit value / 257."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.mode == "RGB" and im.size == (W, H), (im.mode, im.size)
        if im.format == "PNG":
            assert data[24] == 8
        got = im.tobytes()
    want = bytes(round(v / 257) for v in values for _ in range(3))
    worst = max(abs(a - b) for a, b in zip(got, want, strict=True))
    assert worst <= 1, f"sent pixels differ by up to {worst} from the user's image"
    # What the bug looked like: everything above 255/65535 clipped to white.
    assert sum(1 for b in got[::3] if b == 255) <= 2 * H


def image_parts(rig: Rig) -> list[Any]:
    return [f for r in rig.images.requests if r.path.endswith("/images/edits") for f in r.files if f.field == "image"]


async def test_a_16_bit_grey_png_reaches_the_api_in_8_bit_by_edit_and_by_reply(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    png, values = grey16()

    att = fd.add_attachment(png, "scan.png", "image/png")
    h = await fd.inject_interaction(fd.slash("edit", {"prompt": "colour this scan"}, attachments={"image": att}))
    await h.wait_for(has_result, timeout=20)
    (part,) = image_parts(rig)
    assert part.content_type == "image/png"
    assert_sent_as_8_bit(part.data, values)

    photo = fd.create_user_message("bob", "an old scan", [fd.add_attachment(png, "old.png", "image/png")])
    ask = fd.reply("alice", f"<@{fd.bot_id}> make it sepia", photo, mention_bot=True)
    await fd.inject_message(ask)
    await fd.wait_for(lambda: _answer(fd, ask) is not None and results_of(_answer(fd, ask)), timeout=20)
    assert len(image_parts(rig)) == 2
    assert_sent_as_8_bit(image_parts(rig)[-1].data, values)
    await poll(lambda: [j["status"] for j in job_rows(rig)] == ["done", "done"])


def _answer(fd: FakeDiscord, message: dict[str, Any]) -> dict[str, Any] | None:
    for m in fd.bot_messages():
        if (m.get("message_reference") or {}).get("message_id") == message["id"]:
            return m
    return None


async def test_a_truncated_final_image_is_a_refunded_failure_and_the_next_request_works(rig: Rig) -> None:
    await rig.start_bot()
    fd = rig.discord
    rig.images.truncate_final_next()  # the 3.9 KB the report saw, partial frames whole
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a lighthouse in a storm"}))
    await h.wait_for(lambda x: x.original and (x.original.get("content") or "").startswith("❌"), timeout=20)
    assert h.original is not None
    content = h.original["content"]
    assert "broken image" in content and "charged" in content and "✅" not in content
    assert not results_of(h.original) and not any(a["filename"].startswith("preview") for a in files_of(h.original))
    assert len(rig.images.results[-1]) == 3900  # the fake really sent the cut file
    await poll(lambda: job_rows(rig) and job_rows(rig)[0]["status"] == "failed")
    (job,) = job_rows(rig)
    assert job["images_done"] == 0 and job["cost_actual"] == 0 and "broken" in (job["error"] or "")

    # The operator can find the answer the service gave: the request id is in the warning.
    line = next(ln for ln in rig.log_text().splitlines() if "is broken" in ln)
    request_id = re.search(r"request_id=(req_\w+)", line)
    assert request_id and f"x-request-id={request_id.group(1)}" in rig.log_text(), line

    h2 = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a lighthouse on a calm day"}))
    await h2.wait_for(has_result, timeout=20)
    assert fd.cdn_bytes(final_files(h2)[0]) == rig.images.results[-1]
    assert h2.original is not None and (h2.original.get("content") or "").startswith("✅")
    await poll(lambda: [j["status"] for j in job_rows(rig)] == ["failed", "done"])


async def test_one_broken_image_of_two_is_reported_and_only_the_good_one_charged(rig: Rig) -> None:
    await rig.start_bot(PARTIAL_IMAGES="0")
    fd = rig.discord
    rig.images.truncate_final_next(keep_bytes=100)  # the first of the job's two requests
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "two boats", "count": 2}))
    await h.wait_for(has_result, timeout=20)
    (result,) = final_files(h)
    assert Image.open(io.BytesIO(fd.cdn_bytes(result))).size  # the one delivered opens
    assert h.original is not None
    assert "1 of 2 images failed" in h.original["content"] and "broken image" in h.original["content"]
    await poll(lambda: job_rows(rig) and job_rows(rig)[0]["status"] == "partial")
    assert job_rows(rig)[0]["images_done"] == 1
