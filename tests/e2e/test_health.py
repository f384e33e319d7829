"""The health endpoint, the metrics and the job log lines of the real bot (``HEALTH_ADDRESS`` set), scraped
over HTTP while a job runs and after it ends; the log is the bot subprocess's own output."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.ops.health_server import HealthServer
from bot.ops.metrics import Metrics
from tests.helpers.e2e import has_result, job_rows, poll
from tests.plugins.rig import Rig

PROMPT = "a lighthouse in a storm, oil painting"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def get(url: str, accept: str = "*/*") -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Accept": accept}) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from the Prometheus text format."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), math.nan)


async def test_healthz_and_metrics_while_a_job_runs_and_after(rig: Rig) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rig.images.delay_first_event = 0.5
    rig.images.delay_between_events = 0.8
    fd = rig.discord
    fd.rate_limit_next("PATCH", r"^/webhooks/", retry_after=0.1)  # one 429 that discord.py retries
    await rig.start_bot(HEALTH_ADDRESS=f"127.0.0.1:{port}", LOG_LEVEL="INFO")
    await until_healthy(base)

    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": PROMPT}))
    await poll(lambda: bool(job_rows(rig)) and job_rows(rig)[0]["status"] == "running")
    status, ctype, during = await get(base + "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert value(during, "imagebot_jobs_started_total") == 1
    assert value(during, "imagebot_streams_running") == 1
    assert value(during, "imagebot_queue_length") == 0
    assert math.isnan(value(during, "imagebot_jobs_total", status="done"))  # no job has ended yet
    assert value(during, "imagebot_memory_trims_total") == 0
    assert (await get(base + "/healthz"))[0] == 200

    await h.wait_for(has_result, timeout=20)
    await poll(lambda: value_now(rig) is not None)  # settled in the database

    async def metrics_after_the_job() -> str | None:
        text = (await get(base + "/metrics"))[2]
        return text if value(text, "imagebot_jobs_total", status="done") == 1 else None

    after = await poll(metrics_after_the_job, timeout=5)
    [job] = job_rows(rig)
    check_metrics_after_the_job(after, job, fd.rate_limited_count)
    check_job_events_logged(rig, job)

    async def trimmed() -> bool:  # freed memory handed back once the last job has ended (bot/ops/memory.py)
        return value((await get(base + "/metrics"))[2], "imagebot_memory_trims_total") >= 1

    await poll(trimmed, timeout=5, what="a memory trim after the last job")


async def until_healthy(base: str) -> None:
    """Wait until /healthz says ok (READY follows IDENTIFY once the guilds have arrived), in both formats."""

    async def healthy() -> tuple[str, str] | None:
        status, ctype, body = await get(base + "/healthz")
        if status == 200:
            return ctype, body
        assert json.loads(body)["checks"]["gateway"] == "not connected to the Discord gateway"
        return None

    ctype, body = await poll(healthy)
    assert ctype.startswith("application/json")
    assert json.loads(body) == {"ok": True, "checks": {"gateway": "ok", "database": "ok"}}
    status, _, body = await get(base + "/healthz", accept="text/plain")
    assert status == 200 and body.splitlines()[0] == "ok"


def check_metrics_after_the_job(after: str, job: Any, rate_limited: int) -> None:
    assert value(after, "imagebot_jobs_total", status="done") == 1
    assert value(after, "imagebot_images_total") == 1
    assert value(after, "imagebot_tokens_total", kind="output") == job["output_tokens"] > 0
    assert value(after, "imagebot_tokens_total", kind="input") == job["input_tokens"]
    assert math.isclose(value(after, "imagebot_cost_usd_total"), job["cost_actual"], rel_tol=1e-6)
    assert value(after, "imagebot_time_to_first_frame_seconds_count") == 1
    assert value(after, "imagebot_time_to_completion_seconds_count") == 1
    first = value(after, "imagebot_time_to_first_frame_seconds_sum")
    total = value(after, "imagebot_time_to_completion_seconds_sum")
    assert 0.4 < first < total < 20  # the fake waited 0.5 s before the first frame, 0.8 s between events
    assert value(after, "imagebot_streams_running") == 0
    assert value(after, "imagebot_discord_rate_limited_total") == 1 == rate_limited
    latency = value(after, "imagebot_gateway_latency_seconds")
    assert 0 <= latency < 5  # measured from the gateway heartbeat


def check_job_events_logged(rig: Rig, job: Any) -> None:
    """One line per job event, with the ids and no prompt at info level."""
    fd = rig.discord
    log = rig.log_text()
    events = [line for line in log.splitlines() if "bot.jobs.service.events" in line]
    names = [line.split("bot.jobs.service.events: ")[1].split()[2] for line in events]
    assert names == ["queued", "started", "first_frame", "completed"], events
    done = events[-1]
    for field in (f"job {job['id']} ", f"guild_id={fd.guild_id}", f"user_id={fd.users['alice'].id}"):
        assert field in done
    assert "model=gpt-image-2" in done and "request_id=req_" in done and "duration_s=" in done
    assert PROMPT not in log and "lighthouse" not in log
    assert "sk-test" not in log and fd.token not in log


def value_now(rig: Rig) -> Any:
    rows = job_rows(rig)
    return rows[0]["cost_actual"] if rows and rows[0]["status"] == "done" else None


async def test_json_logs_a_failed_job_and_its_refund(rig: Rig) -> None:
    port = free_port()
    rig.images.fail_next(400, type="invalid_request_error", code="invalid_value", message="Invalid value.")
    await rig.start_bot(HEALTH_ADDRESS=f"127.0.0.1:{port}", LOG_LEVEL="INFO", LOG_FORMAT="json", LOG_PROMPTS="true")
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": PROMPT}))
    await h.wait_for(lambda h: h.original is not None and h.original.get("content"), timeout=15)
    await poll(lambda: job_rows(rig)[0]["status"] == "failed")
    await rig.wait_for_log('"event": "refunded"')

    records = []
    for line in rig.log_text().splitlines():
        if not line or line.startswith("====="):
            continue  # the rig's own marker
        records.append(json.loads(line))  # every line the bot wrote is one JSON object
    jobs = [r for r in records if r["logger"] == "bot.jobs.service.events"]
    assert [r["event"] for r in jobs] == ["queued", "started", "failed", "refunded"]
    queued, _, failed, refunded = jobs
    assert queued["prompt"] == PROMPT  # LOG_PROMPTS=true
    assert queued["guild_id"] == fd.guild_id and queued["user_id"] == fd.users["alice"].id
    assert queued["model"] == "gpt-image-2" and queued["job_id"] == job_rows(rig)[0]["id"]
    assert failed["error"] == "InvalidRequest" and failed["code"] == "invalid_value"
    assert failed["request_id"].startswith("req_") and failed["level"] == "WARNING"
    assert refunded["status"] == "failed" and isinstance(refunded["duration_s"], float)

    _, _, text = await get(f"http://127.0.0.1:{port}/metrics")
    assert value(text, "imagebot_api_errors_total", error_class="InvalidRequest") == 1
    assert value(text, "imagebot_jobs_total", status="failed") == 1
    assert value(text, "imagebot_refunds_total") == 1
    assert value(text, "imagebot_images_total") == 0


async def test_healthz_says_503_and_why() -> None:
    async def broken_db() -> None:
        raise OSError("disk gone")

    port = free_port()
    server = HealthServer(f"127.0.0.1:{port}", Metrics(), gateway_connected=lambda: False, database_ping=broken_db)
    await server.start()
    try:
        status, _, body = await get(f"http://127.0.0.1:{port}/healthz")
        assert status == 503
        assert json.loads(body) == {
            "ok": False,
            "checks": {"gateway": "not connected to the Discord gateway", "database": "unreachable: OSError"},
        }
        status, _, body = await get(f"http://127.0.0.1:{port}/healthz", accept="text/plain")
        assert status == 503 and body.splitlines() == [
            "unhealthy",
            "gateway: not connected to the Discord gateway",
            "database: unreachable: OSError",
        ]
    finally:
        await server.stop()


async def test_a_busy_health_address_stops_the_bot_with_one_line(rig: Rig) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        await rig.start_bot(wait=False, HEALTH_ADDRESS=f"127.0.0.1:{port}")
        assert rig.proc is not None
        code = await asyncio.wait_for(rig.proc.wait(), 20)
    assert code == 2
    assert f"imagebot: cannot listen on HEALTH_ADDRESS 127.0.0.1:{port}: " in rig.log_text()
