"""Job events: one log line each (queued, started, first frame, completed, failed, refunded), plus metrics.

``bot.jobs.service.JobService`` calls the one ``JobEvents`` object it is given; nothing else in the job code logs
these. Each line carries the job id, server, user id, model, the time since the job was queued and, where
the API gave one, its request id. Prompts are logged only with ``LOG_PROMPTS=true``; the line's fields are
also attached to the record as ``record.job`` so the JSON formatter writes them as keys.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from bot.images_api.errors import ImagesAPIError
from bot.ops.metrics import Metrics

log = logging.getLogger("bot.jobs.service.events")

__all__ = ["JobEvents", "JsonFormatter"]


@dataclass(slots=True)
class _Job:
    guild_id: int | None
    user_id: int
    model: str
    kind: str
    images: int
    queued_at: float
    started_at: float | None = None
    first_frame_at: float | None = None


class JobEvents:
    """The hook ``JobService`` reports to. Never raises (a logging problem must not break a job)."""

    def __init__(self, metrics: Metrics | None = None, *, log_prompts: bool = False) -> None:
        self.metrics = metrics
        self.log_prompts = log_prompts
        self._jobs: dict[int, _Job] = {}

    # ---- events ------------------------------------------------------------------------------
    def queued(
        self, job_id: int, *, guild_id: int | None, user_id: int, model: str, kind: str, images: int, prompt: str
    ) -> None:
        self._jobs[job_id] = _Job(guild_id, user_id, model, kind, images, time.monotonic())
        if self.metrics is not None:
            self.metrics.jobs_started.inc()
        extra: dict[str, Any] = {"kind": kind, "images": images}
        if self.log_prompts:
            extra["prompt"] = prompt
        self._emit(job_id, "queued", extra)

    def started(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.started_at is not None:
            return
        job.started_at = time.monotonic()
        self._emit(job_id, "started", {})

    def first_frame(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.first_frame_at is not None:
            return
        job.first_frame_at = time.monotonic()
        if self.metrics is not None:
            self.metrics.first_frame.observe(job.first_frame_at - job.queued_at)
        self._emit(job_id, "first_frame", {})

    def api_error(self, job_id: int, error: BaseException) -> None:
        """One image of the job failed (``ImagesAPIError`` subclasses by name; anything else is a bug)."""
        if self.metrics is not None:
            name = type(error).__name__ if isinstance(error, ImagesAPIError) else "unexpected"
            self.metrics.api_errors.labels(name).inc()

    def completed(
        self,
        job_id: int,
        *,
        status: str,
        images: int,
        cost: float,
        input_tokens: int,
        output_tokens: int,
        request_ids: list[str],
    ) -> None:
        job = self._jobs.pop(job_id, None)
        m = self.metrics
        if m is not None:
            m.jobs.labels(status).inc()
            m.images.inc(images)
            m.cost.inc(max(0.0, cost))
            m.tokens.labels("input").inc(max(0, input_tokens))
            m.tokens.labels("output").inc(max(0, output_tokens))
            if job is not None:
                m.completion.observe(time.monotonic() - job.queued_at)
        fields = {
            "status": status,
            "images": images,
            "cost_usd": round(cost, 6),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "request_id": ",".join(request_ids) or None,
        }
        self._emit(job_id, "completed", fields, job=job)

    def failed(self, job_id: int, *, status: str, error: BaseException | None) -> None:
        job = self._jobs.get(job_id)
        if self.metrics is not None:
            self.metrics.jobs.labels(status).inc()
        fields: dict[str, Any] = {"status": status, "error": type(error).__name__ if error else None}
        code = getattr(error, "code", None)
        if code:
            fields["code"] = str(code)
        fields["request_id"] = getattr(error, "request_id", None)
        self._emit(job_id, "failed", fields, job=job, level=logging.WARNING)

    def refunded(self, job_id: int, *, status: str, reason: str | None = None) -> None:
        """The job's reserved images were given back (failed, blocked or cancelled)."""
        job = self._jobs.pop(job_id, None)
        if self.metrics is not None:
            self.metrics.refunds.inc()
            if status == "cancelled":  # failed and blocked jobs were counted by ``failed``
                self.metrics.jobs.labels(status).inc()
        self._emit(job_id, "refunded", {"status": status, "reason": reason}, job=job)

    # ---- output ------------------------------------------------------------------------------
    def _emit(
        self, job_id: int, event: str, extra: dict[str, Any], *, job: _Job | None = None, level: int = logging.INFO
    ) -> None:
        try:
            job = job or self._jobs.get(job_id)
            fields: dict[str, Any] = {"job_id": job_id, "event": event}
            if job is not None:
                fields.update(
                    guild_id=job.guild_id,
                    user_id=job.user_id,
                    model=job.model,
                    duration_s=round(time.monotonic() - job.queued_at, 3),
                )
            fields.update(extra)
            text = " ".join(f"{k}={_text(v)}" for k, v in fields.items() if k not in ("job_id", "event"))
            log.log(level, "job %s %s %s", job_id, event, text, extra={"job": fields})
        except Exception:  # pragma: no cover - never let logging break a job
            logging.getLogger(__name__).exception("could not log job event %s", event)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) and (not value or any(c.isspace() or c in "\"'=" for c in value)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a job event's fields as keys."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job = getattr(record, "job", None)
        if isinstance(job, dict):
            data.update({k: v for k, v in job.items() if k not in data})
        if record.exc_text:  # already formatted (and redacted) by the log filter
            data["exception"] = record.exc_text
        elif record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)
