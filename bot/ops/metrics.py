"""Prometheus instruments of the bot, in a registry of its own (served by ``bot.ops.health_server`` at ``/metrics``).

Counters are fed by the job event hook (``bot.ops.job_events.JobEvents``), the Discord HTTP trace set up in
``bot.__main__`` and the decode hooks of the Images client and the preview renderer; gauges that mirror live
state (queue length, gateway latency) read it when scraped.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# Seconds. A first frame usually arrives after 5-30 s, a whole image after 15-120 s.
FIRST_FRAME_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, math.inf)
# Seconds a 25 ms timer of the event loop ran late: above ~0.05 s everything the bot does waits, answers included.
LOOP_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, math.inf)
COMPLETION_BUCKETS = (2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, math.inf)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Counter("imagebot_jobs", "Jobs that ended, by final status", ["status"], registry=r)
        self.jobs_started = Counter("imagebot_jobs_started", "Jobs accepted (quota reserved)", registry=r)
        self.images = Counter("imagebot_images", "Images delivered by the Images API", registry=r)
        self.tokens = Counter("imagebot_tokens", "Tokens the Images API reported, by kind", ["kind"], registry=r)
        self.cost = Counter("imagebot_cost_usd", "Cost of finished jobs in US dollars", registry=r)
        self.refunds = Counter("imagebot_refunds", "Jobs whose reserved images were given back", registry=r)
        self.api_errors = Counter(
            "imagebot_api_errors", "Images API errors, by error class", ["error_class"], registry=r
        )
        self.discord_429 = Counter(
            "imagebot_discord_rate_limited", "HTTP 429 answers received from Discord's REST API", registry=r
        )
        self.first_frame = Histogram(
            "imagebot_time_to_first_frame_seconds",
            "From the job being queued (quota reserved) to its first partial frame",
            buckets=FIRST_FRAME_BUCKETS,
            registry=r,
        )
        self.completion = Histogram(
            "imagebot_time_to_completion_seconds",
            "From the job being queued to its end (completed jobs)",
            buckets=COMPLETION_BUCKETS,
            registry=r,
        )
        self.decodes = Counter(
            "imagebot_image_decodes",
            "Image fields decoded from base64: kind=partial (a preview rendered), kind=final (a result)",
            ["kind"],
            registry=r,
        )
        self.decodes.labels("partial")
        self.decodes.labels("final")
        self.memory_trims = Counter(
            "imagebot_memory_trims", "Times freed memory was handed back to the system after a rush", registry=r
        )
        self.loop_lag = Histogram(
            "imagebot_event_loop_lag_seconds",
            "How late the event loop ran a 25 ms timer, sampled continuously",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self.queue_length = Gauge("imagebot_queue_length", "Image streams waiting for a slot", registry=r)
        self.running = Gauge("imagebot_streams_running", "Image streams running now", registry=r)
        self.gateway_latency = Gauge(
            "imagebot_gateway_latency_seconds", "Discord gateway heartbeat latency (NaN when not connected)", registry=r
        )
        self.gateway_latency.set(math.nan)

    def watch_queue(self, waiting: Callable[[], float], running: Callable[[], float]) -> None:
        self.queue_length.set_function(waiting)
        self.running.set_function(running)

    def watch_gateway(self, latency: Callable[[], float]) -> None:
        def read() -> float:
            value = latency()
            return value if math.isfinite(value) else math.nan

        self.gateway_latency.set_function(read)

    def render(self) -> bytes:
        """The Prometheus text format of every instrument."""
        return generate_latest(self.registry)
