"""The progress of one job, as the job sees it: the ``ProgressPublisher`` (``bot/jobs/progress.py``) built for
each job from the settings, rendering its previews with the bot's ``PreviewRenderer`` (``bot/imaging/work.py``).

The publisher is the job's observer: ``JobService`` hands it the queue position, the status and each partial
frame directly, and it calls the one thing the Discord layer gives it, ``send`` (apply a ``ProgressView`` to
the job's message). Nothing relays between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.imaging.work import PreviewRenderer
from bot.jobs.progress import Frame, LoopLag, ProgressPublisher, Sender


@dataclass(frozen=True, slots=True)
class Previews:
    max_side: int = 512  # PREVIEW_MAX_SIDE
    min_interval: float = 1.0  # PREVIEW_MIN_INTERVAL
    status_grace: float = 0.7  # STATUS_GRACE
    frames_per_slot: int = 2  # PARTIAL_IMAGES
    # The bot's one preview thread, built at start (``bot/__main__.py``); a default one where none is given.
    renderer: PreviewRenderer = field(default_factory=PreviewRenderer)
    lag: LoopLag | None = None  # the bot's loop lag: no render starts while the loop runs late

    def publisher(self, send: Sender, slots: int) -> ProgressPublisher:
        """A job's publisher: ``slots`` images, each with its own preview."""

        async def render(frame: Frame, urgent: bool) -> bytes:  # urgent: the job shows nothing yet
            return await self.renderer.render(frame, urgent, self.max_side)

        return ProgressPublisher(
            send=send,
            render=render,
            slots=slots,
            frames_per_slot=max(1, self.frames_per_slot),
            min_interval=self.min_interval,
            status_grace=self.status_grace,
            lag=self.lag,
        )
