"""The progress of one job, as the job sees it: the ``ProgressPublisher`` (``bot/jobs/progress.py``) built for
each job from the settings, rendering its previews with ``bot/imaging/work.py``.

The publisher is the job's observer: ``JobService`` hands it the queue position, the status and each partial
frame directly, and it calls the one thing the Discord layer gives it, ``send`` (apply a ``ProgressView`` to
the job's message). Nothing relays between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.imaging.work import make_preview
from bot.jobs.progress import PREVIEW_LATENCY, Frame, ProgressPublisher, Sender


@dataclass(frozen=True, slots=True)
class Previews:
    max_side: int = 512  # PREVIEW_MAX_SIDE
    min_interval: float = 1.0  # PREVIEW_MIN_INTERVAL
    status_grace: float = 0.7  # STATUS_GRACE
    frames_per_slot: int = 2  # PARTIAL_IMAGES

    def publisher(self, send: Sender, slots: int) -> ProgressPublisher:
        """A job's publisher: ``slots`` images, each with its own preview."""

        async def render(raw: Frame) -> bytes:
            # A job that shows nothing yet goes first in the preview queue.
            return await make_preview(raw, self.max_side, urgent=not publisher.shown_frame)

        publisher = ProgressPublisher(
            send=send,
            render=render,
            slots=slots,
            frames_per_slot=max(1, self.frames_per_slot),
            min_interval=self.min_interval,
            status_grace=self.status_grace,
            latency=PREVIEW_LATENCY,  # a frame too late to be worth showing is dropped undecoded
        )
        return publisher
