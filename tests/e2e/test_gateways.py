"""End to end behind a gateway: the real bot against the fake Images API imitating new-api, one-api or
the LiteLLM proxy (``bot/demo/images/gateways.py``). One test per behaviour docs/setup/gateways.md describes
(and the two ways a stream can break before or inside its first event): what the user sees, how many requests
the API got (no double billing) and the ledger.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from bot.demo.discord import FakeDiscord, InteractionHandle
from bot.demo.images.gateways import Gateway
from bot.images_api.types import hashed_user, user_hash_key
from tests.e2e.test_doctor import doctor
from tests.helpers.e2e import db, final_files, has_result, job_rows, poll
from tests.plugins.rig import Rig

# The ledger's count of images used (running jobs count what they reserved, refunded ones nothing).
USED_SQL = (
    "SELECT COALESCE(SUM(CASE WHEN status IN ('reserved', 'running') THEN images_reserved "
    "WHEN status IN ('done', 'partial') THEN images_done ELSE 0 END), 0) AS used FROM jobs"
)


def images_used(rig: Rig) -> int:
    return int(db(rig, USED_SQL)[0]["used"])


def content(h: InteractionHandle) -> str:
    return str((h.original or {}).get("content") or "")


def ended(h: InteractionHandle) -> bool:
    return has_result(h) or content(h).startswith("❌")


def use_gateway(rig: Rig, name: str, **options: bool) -> Gateway:
    gateway = Gateway(name)
    for key, value in options.items():
        setattr(gateway, key, value)
    rig.images.gateway = gateway
    return gateway


async def imagine(fd: FakeDiscord, prompt: str, **options: Any) -> InteractionHandle:
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": prompt, **options}))
    await h.wait_for(ended, timeout=25)
    return h


async def settled(rig: Rig, count: int) -> list[Any]:
    """The ledger once ``count`` jobs have finished (settled or refunded)."""
    await poll(
        lambda: len(job_rows(rig)) == count and all(j["status"] not in ("reserved", "running") for j in job_rows(rig))
    )
    return job_rows(rig)


def png(size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def gens(rig: Rig) -> list[Any]:
    return [r for r in rig.images.requests if r.path.endswith("/images/generations")]


async def test_new_api_json_channel_stream_with_url_items_delivers_the_image(rig: Rig) -> None:
    # Row 1: new-api turns its channel's JSON into completed events carrying only a url (no size/format).
    use_gateway(rig, "new-api", json_channel=True, url_items=True)
    await rig.start_bot()
    h = await imagine(rig.discord, "a lantern festival")
    assert has_result(h), content(h)
    assert rig.discord.cdn_bytes(final_files(h)[0]) == rig.images.results[-1]
    assert len(rig.images.requests) == 1 and rig.images.billed == 1
    [download] = rig.images.downloads
    assert "Authorization" not in download and "sk-test" not in str(download)  # the link is fetched keyless
    [job] = await settled(rig, 1)
    assert job["status"] == "done" and images_used(rig) == 1


async def test_json_answer_with_url_items_and_data_as_an_object(rig: Rig) -> None:
    # Row 2: a JSON answer whose data is one object carrying only a url.
    use_gateway(rig, "new-api", url_items=True, data_as_object=True)
    await rig.start_bot(PARTIAL_IMAGES="0")
    h = await imagine(rig.discord, "a paper boat")
    assert has_result(h), content(h)
    assert rig.discord.cdn_bytes(final_files(h)[0]) == rig.images.results[-1]
    assert final_files(h)[0]["filename"].endswith(".png")  # the format sniffed from the bytes
    assert len(rig.images.requests) == 1 and rig.images.billed == 1 and len(rig.images.downloads) == 1
    await settled(rig, 1)
    assert images_used(rig) == 1


async def test_one_api_stream_falls_back_once_and_edits_are_unsupported(rig: Rig) -> None:
    # Row 3: one-api answers a stream request with 500 unmarshal_response_body_failed (after its upstream
    # billed) and /images/edits with 501.
    use_gateway(rig, "one-api")
    await rig.start_bot()
    fd = rig.discord
    h = await imagine(fd, "a red bicycle")
    assert has_result(h), content(h)
    assert h.callback_types == [5]  # acknowledged at once, then the result replaced the status
    assert [r.json.get("stream") for r in gens(rig)] == [True, None]  # one fallback, no retry loop
    assert rig.images.billed == 2  # the one-time cost of learning that this gateway cannot stream
    h2 = await imagine(fd, "a blue bicycle")
    assert has_result(h2)
    assert [r.json.get("stream") for r in gens(rig)] == [True, None, None]  # remembered
    assert rig.log_text().count("cannot stream images") == 1  # logged once, with the reason
    assert "unmarshal_response_body_failed" in rig.log_text()

    att = fd.add_attachment(png(), "photo.png", "image/png")
    e = await fd.inject_interaction(fd.slash("edit", {"prompt": "paint it gold"}, attachments={"image": att}))
    await e.wait_for(ended, timeout=25)
    assert "does not support editing" in content(e)
    assert len([r for r in rig.images.requests if r.path.endswith("/edits")]) == 1  # 501 is not retried
    jobs = await settled(rig, 3)
    assert jobs[2]["status"] == "failed" and images_used(rig) == 2  # the edit was refunded


async def test_litellm_is_recognised_for_free_and_never_asked_for_a_stream(rig: Rig) -> None:
    # LiteLLM 1.110.2 bills a stream request three times and then fails it: the bot finds the proxy from its
    # free GET /v1/model/info at startup and requests every image whole (generations and edits).
    use_gateway(rig, "litellm")
    await rig.start_bot()
    fd = rig.discord
    await rig.wait_for_log("is a LiteLLM proxy: previews are off")
    h = await imagine(fd, "a green kite")
    assert has_result(h), content(h)
    att = fd.add_attachment(png(), "photo.png", "image/png")
    e = await fd.inject_interaction(fd.slash("edit", {"prompt": "add a tail"}, attachments={"image": att}))
    await e.wait_for(ended, timeout=25)
    assert has_result(e), content(e)
    assert [r.json.get("stream") for r in gens(rig)] == [None]
    edits = [r for r in rig.images.requests if r.path.endswith("/edits")]
    assert len(edits) == 1 and "stream" not in edits[0].form and rig.images.billed == 2
    await settled(rig, 2)
    assert images_used(rig) == 2


async def test_a_billed_stream_failure_is_learnt_once_and_remembered_across_restarts(rig: Rig) -> None:
    # A LiteLLM the bot cannot recognise (no model routes): its first stream request fails after billing; the
    # bot turns streaming off at once, tries that job once without streaming (through the proxy's cooldown) and
    # remembers it in the database, so neither a later job nor a restarted bot ever streams to it again.
    gateway = use_gateway(rig, "litellm")
    gateway.cooldown_seconds = 1.0
    rig.images.models = None
    await rig.start_bot()
    fd = rig.discord
    h = await imagine(fd, "a red kite")
    assert has_result(h), content(h)
    assert [r.json.get("stream") for r in gens(rig)] == [True, None, None]  # failed, cooling down, delivered
    assert rig.images.billed == 4  # the proxy's three attempts at the stream, then the image delivered
    assert rig.log_text().count("cannot stream images") == 1 and "model_dump" in rig.log_text()
    h2 = await imagine(fd, "a blue kite")
    assert has_result(h2) and rig.images.billed == 5
    await rig.restart_bot()
    await rig.wait_for_log("cannot stream images (remembered:")
    h3 = await imagine(fd, "a yellow kite")
    assert has_result(h3), content(h3)
    assert [r.json.get("stream") for r in gens(rig)] == [True, None, None, None, None]
    assert rig.images.billed == 6
    [row] = db(rig, "SELECT value FROM kv WHERE key LIKE 'images_api.no_stream.%'")
    assert "LiteLLM" in row["value"]
    jobs = await settled(rig, 3)
    assert all(j["status"] == "done" for j in jobs) and images_used(rig) == 3
    _, out = await doctor(rig)
    assert "the bot remembers that this base URL cannot stream images" in out, out


async def test_a_streamed_edit_failure_never_puts_image_bytes_in_the_log(rig: Rig) -> None:
    # LiteLLM answers a streamed edit with a 500 whose message is the whole SSE body (base64 and all).
    gateway = use_gateway(rig, "litellm")
    gateway.cooldown_seconds = 0.5
    rig.images.models = None
    await rig.start_bot()
    fd = rig.discord
    att = fd.add_attachment(png(), "photo.png", "image/png")
    e = await fd.inject_interaction(fd.slash("edit", {"prompt": "add a tail"}, attachments={"image": att}))
    await e.wait_for(ended, timeout=25)
    assert has_result(e), content(e)
    assert rig.images.billed == 2  # the failed stream, then the edit delivered
    log = rig.log_text()
    assert "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" not in log
    assert "base64 chars>" in log


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("quota", "out of credit"),  # Row 5: 403 insufficient_user_quota
        ("token_quota", "out of credit"),  # 403 pre_consume_token_quota_failed
        ("quota_legacy", "out of credit"),  # older new-api: 401 with "额度" text only
        ("model_not_found", "IMAGE_MODEL"),  # Row 6: 503 model_not_found "无可用渠道"
        ("sensitive_words", "safety"),  # Row 7: sensitive_words_detected, 400 (newer)
        ("sensitive_words_legacy", "safety"),  # ... and 500 (older)
    ],
)
async def test_new_api_errors_are_classified_not_retried_and_refunded(rig: Rig, kind: str, words: str) -> None:
    use_gateway(rig, "new-api")
    rig.images.gateway_fail_next(kind)
    await rig.start_bot()
    h = await imagine(rig.discord, "a quiet harbour")
    assert words in content(h), content(h)
    assert "额度" not in content(h) and "request id" not in content(h)
    assert len(rig.images.requests) == 1 and rig.images.billed == 0  # never retried
    [job] = await settled(rig, 1)
    assert job["status"] == ("blocked" if words == "safety" else "failed") and images_used(rig) == 0
    # Row 8: the request id (X-Oneapi-Request-Id, also in the message's "(request id: …)") is logged.
    assert rig.images.request_ids[0] in rig.log_text()


async def test_litellm_out_of_credit_call_id_and_wording(rig: Rig) -> None:
    # Row 7 (LiteLLM): 429 with code "429" and "exceeded your current quota" is out of credit, not busy.
    use_gateway(rig, "litellm")
    rig.images.gateway_fail_next("out_of_credit")
    await rig.start_bot()
    fd = rig.discord
    h = await imagine(fd, "a snowy owl")
    assert "out of credit" in content(h) and "busy" not in content(h)
    assert len(rig.images.requests) == 1
    assert rig.images.request_ids[0] in rig.log_text()  # Row 8: x-litellm-call-id

    # Row 10: a gateway's 400 wording never reaches the user; the log keeps it.
    rig.images.gateway_fail_next("bad_request")
    h2 = await imagine(fd, "a snowy owl, again")
    assert "refused these settings" in content(h2)
    for raw in ("litellm", "AzureException", "BadRequestError", "{"):
        assert raw not in content(h2)
    assert "AzureException" in rig.log_text()
    assert len(rig.images.requests) == 2
    await settled(rig, 2)
    assert images_used(rig) == 0


async def test_new_api_gets_a_hashed_user_as_well_as_safety_identifier(rig: Rig) -> None:
    # Row 9: new-api drops safety_identifier from JSON generations; the bot sends user too, hashed.
    use_gateway(rig, "new-api")
    await rig.start_bot()
    fd = rig.discord
    h = await imagine(fd, "a windmill")
    assert has_result(h)
    alice = fd.users["alice"].id
    [sent] = gens(rig)
    key = user_hash_key("", fd.token)  # no USER_HASH_SECRET: derived from the bot token
    assert sent.json["user"] == sent.json["safety_identifier"] == hashed_user(alice, key)
    assert sent.json["user"] != hashed_user(alice, user_hash_key("another deployment", fd.token))
    [upstream] = rig.images.forwarded
    assert upstream["user"] == hashed_user(alice, key) and "safety_identifier" not in upstream
    assert str(alice) not in str(sent.json)  # never the raw Discord id


async def test_stream_cut_before_the_first_event_is_retried(rig: Rig) -> None:
    # The stream is cut right after the response headers, before any event: nothing can have been billed.
    rig.images.drop_connection_next(after_partials=0)
    await rig.start_bot(API_MAX_RETRIES="1")
    h = await imagine(rig.discord, "a tin robot")
    assert has_result(h), content(h)
    assert len(rig.images.requests) == 2 and rig.images.billed == 1
    [job] = await settled(rig, 1)
    assert job["status"] == "done" and images_used(rig) == 1


async def test_half_an_event_is_the_services_fault(rig: Rig) -> None:
    # Half an event's JSON, then the end of the stream: the service's fault, not retried.
    rig.images.half_event_next(after_partials=0)
    await rig.start_bot()
    h = await imagine(rig.discord, "a clock tower")
    assert "couldn't read" in content(h) and "connection" not in content(h)
    assert len(rig.images.requests) == 1  # something was sent: not retried
    [job] = await settled(rig, 1)
    assert job["status"] == "failed" and images_used(rig) == 0


@pytest.mark.parametrize("gateway", ["new-api", "one-api", "litellm"])
async def test_demo_mode_runs_each_gateway(rig: Rig, gateway: str) -> None:
    await rig.start_bot(DEMO_MODE="true", DEMO_GATEWAY=gateway, OPENAI_API_KEY=None, OPENAI_BASE_URL=None)
    h = await imagine(rig.discord, f"a demo robot behind {gateway}")
    assert has_result(h), content(h)
    assert rig.images.requests == []  # the built-in fake answered
    assert f"imitating {gateway}" in rig.log_text()
