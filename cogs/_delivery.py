"""Running one job on Discord: where its message lives, its live progress, and delivering the result.

``start_interaction_job`` opens a job from a validated ``JobSpec`` (``JobService.open``: the job's money,
``bot/jobs/job.py``) and acknowledges the interaction in time; ``run_job`` runs an open job in a place to
answer (a ``Target``): the queue position and live previews (``bot/jobs/progress.py``), then the result
with its embed and buttons (``cogs/results.py``), and only then settles it. A result that could not be
delivered is not settled (its owner refunds it), and the user is told why.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import discord

from bot import messages
from bot.images_api.types import CompletedImage
from bot.imaging.svg import UnsafeSvg, render_svg
from bot.imaging.uploads import plan_uploads
from bot.jobs.job import Job
from bot.jobs.progress import ProgressView
from bot.jobs.service import JobOutcome, JobSpec
from bot.messages.i18n import format_number, translate
from cogs._checks import require_bot_permissions
from cogs._common import ImageBotBase, upload_budget
from cogs._render import (
    failure_content,
    file_name,
    format_note,
    preview_name,
    progress_content,
    rendering_name,
    result_embed,
)
from cogs._translator import locale_of
from cogs.results import ProgressButtons, ResultView

log = logging.getLogger(__name__)

ACK_AFTER = 1.5  # seconds; Discord drops interactions not acknowledged within 3


@dataclass(frozen=True, slots=True)
class Upload:
    """A file to attach. Kept as bytes: every attempt (a retry, a fallback) gets a fresh ``discord.File``."""

    filename: str
    data: bytes


class MessageGone(Exception):
    """The job's message was deleted (404 Unknown Message): someone removed it on purpose."""


UNKNOWN_MESSAGE = 10008


def gone(exc: discord.HTTPException) -> bool:
    return exc.status == 404 and exc.code == UNKNOWN_MESSAGE


def files(uploads: Sequence[Upload]) -> list[discord.File]:
    return [discord.File(io.BytesIO(u.data), filename=u.filename) for u in uploads]


# --- where a job's message lives ----------------------------------------------------------------


class Target:
    """The message a job reports into: an interaction's response, or a message the bot posted.

    ``edit`` takes ``uploads`` (the message's new attachments, as ``Upload``s) besides discord.py's
    message fields.
    """

    upload_limit: int
    channel: discord.abc.Messageable | None
    locale: str  # the catalog the job's messages are in (cogs/_translator.py), fixed when the job starts

    async def edit(self, *, uploads: Sequence[Upload] | None = None, **fields: Any) -> discord.Message | None:
        raise NotImplementedError

    async def send_extra(self, uploads: Sequence[Upload]) -> discord.Message | None:
        """Another message after the first (a result too large for one message)."""
        if self.channel is None:
            return None
        return await self.channel.send(files=files(uploads))


def _attachments(uploads: Sequence[Upload] | None, fields: dict[str, Any]) -> dict[str, Any]:
    if uploads is not None:
        fields["attachments"] = files(uploads)
    return fields


class InteractionTarget(Target):
    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.locale = locale_of(interaction)
        self.upload_limit = upload_budget(interaction.filesize_limit)
        self.channel = interaction.channel if isinstance(interaction.channel, discord.abc.Messageable) else None
        self._fallback: discord.Message | None = None

    async def edit(self, *, uploads: Sequence[Upload] | None = None, **fields: Any) -> discord.Message | None:
        if self._fallback is not None:
            return await self._fallback.edit(**_attachments(uploads, dict(fields)))
        try:
            return await self.interaction.edit_original_response(**_attachments(uploads, dict(fields)))
        except discord.HTTPException as exc:
            if gone(exc):
                raise MessageGone() from exc
            if exc.status not in (401, 404) or self.channel is None:
                raise
            # The 15-minute interaction token expired: post the result as a channel message instead,
            # pinging only the person who asked (they may have stopped watching).
            log.info("interaction token expired; answering in the channel instead")
            user = self.interaction.user
            content = fields.pop("content", None) or ""
            fields.pop("attachments", None)
            self._fallback = await self.channel.send(
                content=messages.clip(f"{user.mention} {content}", 2000),
                files=files(uploads or []),
                allowed_mentions=discord.AllowedMentions(users=[user]),
                **fields,
            )
            return self._fallback


class MessageTarget(Target):
    """A message the bot posted itself (e.g. its reply to someone's reply)."""

    def __init__(self, message: discord.Message, upload_limit: int, locale: str) -> None:
        self.message = message
        self.locale = locale
        self.channel = message.channel
        self.upload_limit = upload_budget(upload_limit)

    async def edit(self, *, uploads: Sequence[Upload] | None = None, **fields: Any) -> discord.Message | None:
        try:
            self.message = await self.message.edit(**_attachments(uploads, dict(fields)))
        except discord.HTTPException as exc:
            if gone(exc):
                raise MessageGone() from exc
            raise
        return self.message


# --- one job's message ----------------------------------------------------------------------------


class JobMessage:
    """One job's message on Discord: its progress (``send_progress``, called by the job's publisher), then
    the result or why there is none."""

    def __init__(self, bot: ImageBotBase, target: Target, spec: JobSpec, job_id: int, user: discord.abc.User) -> None:
        self.bot, self.target, self.spec, self.job_id, self.user = bot, target, spec, job_id, user
        self.locale = target.locale
        self.started = time.time()
        self.previews_off = False
        self.progress_buttons = ProgressButtons(job_id, self.locale)  # the same Cancel button on every edit

    async def send_progress(self, view: ProgressView) -> None:
        if self.previews_off:
            return
        previews = [Upload(preview_name(s.slot), s.jpeg) for s in view.slots if s.jpeg is not None and not s.done]
        note = format_note(self.spec.options, self.locale)
        fields: dict[str, Any] = {"content": progress_content(view, self.spec.prompt, self.locale, note)}
        try:
            await self.target.edit(
                uploads=previews if previews or view.new_frame else None,
                view=self.progress_buttons,
                **fields,
            )
        except MessageGone:
            # Deleting the progress message cancels the job: the streams close and nothing is charged.
            log.info("job %s: its message was deleted; cancelling the job", self.job_id)
            self.previews_off = True
            self.bot.services.jobs.cancel(self.job_id, reason="message deleted")
        except discord.HTTPException as exc:
            # e.g. 403 Missing Permissions on files: no more previews; the result still gets its chance.
            log.warning("job %s: progress update refused (%s %s); no more previews", self.job_id, exc.status, exc.code)
            self.previews_off = True

    async def show_failure(self, outcome: JobOutcome) -> None:
        """No image came back: say why (stopped, the image service's error), with Reroll and Delete."""
        err = outcome.first_error
        if outcome.stopped:
            text = messages.stopped(outcome.stopped, outcome.stopped_by, locale=self.locale)
        elif err is not None:
            text = messages.api_error(err, self.locale)
        else:
            text = messages.text(self.locale, messages.NO_IMAGE)
        try:
            await self.target.edit(
                content=failure_content(text, self.spec.prompt),
                uploads=[],
                embeds=[],
                view=ResultView(self.job_id, include_edit=False, locale=self.locale),
            )
        except (discord.HTTPException, MessageGone) as exc:
            log.warning("job %s: could not show how it ended (%s)", self.job_id, type(exc).__name__)

    async def deliver(self, outcome: JobOutcome) -> tuple[list[CompletedImage], discord.Message | None]:
        """Edit the result in; returns the images that reached Discord and the message that shows them
        (raises if the first message fails)."""
        images = outcome.delivered
        plan = await plan_uploads(images, self.target.upload_limit)
        uploads = [Upload(file_name(outcome.job_id, i, u.extension), u.data) for i, u in enumerate(plan.files)]
        loc = self.locale
        content = translate(loc, "✅ Done in {seconds}s", seconds=int(time.time() - self.started))
        failed = len(outcome.images) - len(images)
        if outcome.stopped:
            content = messages.stopped(
                outcome.stopped, outcome.stopped_by, kept=len(images), total=len(outcome.images), locale=loc
            )
        elif failed:
            reason = messages.api_error(outcome.first_error or Exception(), loc)
            content += " · " + translate(
                loc,
                "{failed} of {total} images failed ({reason})",
                failed=format_number(loc, failed),
                total=format_number(loc, len(outcome.images)),
                reason=reason,
            )
        if plan.reencoded:
            content += " · " + translate(loc, "re-encoded to fit Discord's upload limit")
        model = self.bot.services.jobs.model_of(self.spec.model)[0]
        embed = result_embed(self.spec, outcome.job_id, self.user, model, images, loc)
        first, *extra = plan.messages
        first_uploads = [uploads[i] for i in first]
        if images and images[0].output_format == "svg":
            rendering = await self._svg_rendering(images[0].data)
            if rendering is not None:
                name = rendering_name(outcome.job_id)
                first_uploads.append(Upload(name, rendering))
                embed.set_image(url=f"attachment://{name}")
            else:
                content += " · " + translate(loc, "the SVG could not be drawn as a picture; the file is attached")
        message = await self.target.edit(
            content=messages.clip(content, 2000),
            uploads=first_uploads,
            embeds=[embed],
            view=ResultView(outcome.job_id, locale=loc),
        )
        delivered = [images[i] for i in first]
        for group in extra:
            try:
                await self.target.send_extra([uploads[i] for i in group])
            except discord.HTTPException as exc:
                log.warning("job %s: an extra result message failed (%s)", outcome.job_id, exc.status)
                break
            delivered += [images[i] for i in group]
        return delivered, message

    async def _svg_rendering(self, clean_svg: bytes) -> bytes | None:
        """A PNG of the (already cleaned) SVG for the embed, or None when it cannot be drawn in time."""
        try:
            png = await render_svg(clean_svg)
        except UnsafeSvg as exc:
            log.warning("job %s: SVG not rendered: %s", self.job_id, exc)
            return None
        return png if len(png) <= self.target.upload_limit // 2 else None

    async def tell_undelivered(self, exc: BaseException) -> None:
        """The result could not be posted: say so where we still can (the message, else the channel)."""
        text = messages.undelivered(getattr(exc, "status", None), getattr(exc, "code", None), self.locale)
        try:
            await self.target.edit(content=failure_content(text, self.spec.prompt), uploads=[], embeds=[], view=None)
            return
        except (discord.HTTPException, MessageGone) as again:
            log.warning("job %s: could not show the delivery failure (%s)", self.job_id, type(again).__name__)
        if self.target.channel is not None:
            try:
                await self.target.channel.send(failure_content(text, self.spec.prompt))
            except discord.HTTPException as last:
                log.warning("job %s: could not tell the user in the channel either (%s)", self.job_id, last.status)


async def run_job(bot: ImageBotBase, target: Target, job: Job, user: discord.abc.User) -> JobOutcome:
    """Stream ``job`` into ``target``'s message, edit the result in, and settle what reached the user.

    Settling is the one money decision here: every other way out leaves the job to its owner
    (``JobService.open``), which gives the images back for the reason that ended it."""
    message = JobMessage(bot, target, job.spec, job.id, user)
    outcome = await job.run(message.send_progress)
    if outcome.stopped == "message deleted":  # nobody is there to deliver to
        return outcome
    if not outcome.delivered:
        await message.show_failure(outcome)
        return outcome
    try:
        delivered, shown = await message.deliver(outcome)
    except MessageGone:
        log.info("job %s: its message was deleted before the result; not charged", outcome.job_id)
        return outcome
    except Exception as exc:
        if isinstance(exc, discord.HTTPException):
            log.warning("job %s: the result could not be delivered (%s %s)", outcome.job_id, exc.status, exc.code)
        else:
            log.exception("job %s: delivering the result failed", outcome.job_id)
        await message.tell_undelivered(exc)
        return outcome
    await job.settle(delivered, shown.id if shown is not None else None)
    return outcome


class Acknowledgement:
    """Acknowledges an interaction publicly (the "thinking…" that becomes the job's message) no later than
    ``ACK_AFTER`` seconds after the job was asked for, while the work before it (reserving, downloading the
    inputs) goes on in the same task: a slow database delays the answer, never repeats the reservation.

    A refusal found before then is one private answer (``reply_ephemeral`` through the error path);
    after it, the "thinking…" is replaced by that private answer."""

    def __init__(self, interaction: discord.Interaction, after: float = ACK_AFTER) -> None:
        self.interaction = interaction
        self._deferring = False
        self._timer = asyncio.create_task(self._defer_after(after), name=f"ack-{interaction.id}")

    async def _defer_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._deferring = True
        log.warning("interaction %s: still preparing after %.1fs; acknowledging first", self.interaction.id, delay)
        await self._defer()

    async def _defer(self) -> None:
        if not self.interaction.response.is_done():
            await self.interaction.response.defer(thinking=True)

    async def _stop_timer(self) -> None:
        if not self._deferring:
            self._timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._timer  # a deferral under way is finished, not cut off; its failure is raised

    async def now(self) -> None:
        """The job is about to run: acknowledge now if that has not happened yet."""
        await self._stop_timer()
        await self._defer()

    async def close(self) -> None:
        try:
            await self._stop_timer()
        except discord.HTTPException as exc:  # the interaction is lost; the error path logs its own try
            log.warning("interaction %s could not be acknowledged (%s)", self.interaction.id, exc.status)


@contextlib.asynccontextmanager
async def acknowledging(interaction: discord.Interaction) -> AsyncIterator[Acknowledgement]:
    ack = Acknowledgement(interaction)
    try:
        yield ack
    finally:
        await ack.close()


Prepare = Callable[[Job], Awaitable[None]]


async def start_interaction_job(
    bot: ImageBotBase, interaction: discord.Interaction, spec: JobSpec, prepare: Prepare | None = None
) -> JobOutcome:
    """Run a job asked for by an interaction: check the bot's permissions, open the job (rules, limits,
    one reservation), ``prepare`` it (an edit's inputs: downloaded only now, refunded if refused), then
    acknowledge and run it in the interaction's response. Every refusal propagates to the one error path,
    which answers privately; the job's owner has already given back whatever was reserved."""
    require_bot_permissions(interaction.app_permissions)  # refused before anything is reserved
    async with acknowledging(interaction) as ack, bot.services.jobs.open(spec) as job:
        if prepare is not None:
            await prepare(job)
        await ack.now()
        return await run_job(bot, InteractionTarget(interaction), job, interaction.user)
