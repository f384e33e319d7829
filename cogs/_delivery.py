"""Running one job on Discord: where its message lives, its live progress, and delivering the result.

``run_job`` takes a validated ``JobSpec`` and a place to answer (a ``Target``): it reserves quota (unless
the caller did), shows the queue position and live previews (``bot/jobs/progress.py``), edits in the result
with its embed and buttons (``cogs/results.py``), and only then charges the job. A result that could not
be delivered is refunded, and the user is told why.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import discord

from bot import messages
from bot.images_api.types import CompletedImage, PartialImage
from bot.imaging.work import fit_upload, make_preview, pack_uploads
from bot.jobs.progress import PREVIEW_LATENCY, ProgressPublisher, ProgressView
from bot.jobs.service import JobOutcome, JobSpec, ShuttingDown, TooManyJobs
from bot.messages.i18n import format_number, translate
from bot.quota import QuotaExceeded, Reservation
from bot.rules import PromptRefused
from cogs._checks import require_bot_permissions
from cogs._common import ImageBotBase, reply_ephemeral, upload_budget
from cogs._errors import error_text
from cogs._render import failure_content, file_name, preview_name, progress_content, result_embed
from cogs._translator import locale_of
from cogs.results import ProgressButtons, ResultView

log = logging.getLogger(__name__)

RESERVE_BEFORE_ACK = 1.5  # seconds; Discord drops interactions not acknowledged within 3


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

    async def withdraw(self, text: str) -> None:
        """Replace the progress message by a note (quota refusals and the like)."""
        await self.edit(content=text, uploads=[], embeds=[], view=None)


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

    async def withdraw(self, text: str) -> None:
        await reply_ephemeral(self.interaction, text)  # deletes the public "thinking…" first


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
    """Observer of one job (``bot.jobs.service.JobObserver``): paced previews while it runs, then the result."""

    def __init__(self, bot: ImageBotBase, target: Target, spec: JobSpec, job_id: int, user: discord.abc.User) -> None:
        s = bot.services.settings
        self.bot, self.target, self.spec, self.job_id, self.user = bot, target, spec, job_id, user
        self.locale = target.locale
        self.started = time.time()
        self.previews_off = False
        self.progress_buttons = ProgressButtons(job_id, self.locale)  # the same Cancel button on every edit
        self.publisher = ProgressPublisher(
            send=self._send_progress,
            # A job that shows nothing yet goes first in the preview queue.
            render=lambda raw: make_preview(raw, s.preview_max_side, urgent=not self.publisher.shown_frame),
            slots=spec.options.count,
            frames_per_slot=max(1, s.partial_images),
            min_interval=s.preview_min_interval,
            status_grace=s.status_grace,
            started_at=self.started,
            latency=PREVIEW_LATENCY,  # a frame too late to be worth showing is dropped undecoded
        )

    # JobObserver
    def queued(self, position: int) -> None:
        self.publisher.set_queued(position)

    def generating(self) -> None:
        self.publisher.set_generating()

    def partial(self, slot: int, frame: PartialImage) -> None:
        self.publisher.frame(slot, frame.index, frame)

    def slot_done(self, slot: int, image: CompletedImage | None) -> None:
        self.publisher.slot_finished(slot, failed=image is None)

    async def _send_progress(self, view: ProgressView) -> None:
        if self.previews_off:
            return
        previews = [Upload(preview_name(s.slot), s.jpeg) for s in view.slots if s.jpeg is not None and not s.done]
        fields: dict[str, Any] = {"content": progress_content(view, self.spec.prompt, self.locale)}
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

    async def show_failure(self, text: str) -> None:
        await self.target.edit(
            content=failure_content(text, self.spec.prompt),
            uploads=[],
            embeds=[],
            view=ResultView(self.job_id, include_edit=False, locale=self.locale),
        )

    async def deliver(self, outcome: JobOutcome) -> list[CompletedImage]:
        """Edit the result in; returns the images that reached Discord (raises if the first message fails)."""
        images = outcome.delivered
        limit = self.target.upload_limit
        fitted = [await fit_upload(im.data, im.output_format, limit) for im in images]
        groups = pack_uploads([len(u.data) for u in fitted], limit)
        uploads = [Upload(file_name(outcome.job_id, i, u.extension), u.data) for i, u in enumerate(fitted)]
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
        if any(u.reencoded for u in fitted):
            content += " · " + translate(loc, "re-encoded to fit Discord's upload limit")
        model = self.bot.services.settings.image_model
        embed = result_embed(self.spec, outcome.job_id, self.user, model, images, loc)
        message = await self.target.edit(
            content=messages.clip(content, 2000),
            uploads=[uploads[i] for i in groups[0]],
            embeds=[embed],
            view=ResultView(outcome.job_id, locale=loc),
        )
        delivered = [images[i] for i in groups[0]]
        if message is not None:
            try:  # the image reached the user: a database hiccup here must not make the delivery count as failed
                await self.bot.services.quota.set_message(outcome.job_id, message.id)
            except Exception as exc:
                log.warning("job %s: could not record its message (%s); Reroll may not find it", outcome.job_id, exc)
        for group in groups[1:]:
            try:
                await self.target.send_extra([uploads[i] for i in group])
            except discord.HTTPException as exc:
                log.warning("job %s: an extra result message failed (%s)", outcome.job_id, exc.status)
                break
            delivered += [images[i] for i in group]
        return delivered

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


async def run_job(
    bot: ImageBotBase,
    target: Target,
    spec: JobSpec,
    user: discord.abc.User,
    reservation: Reservation | None = None,
) -> JobOutcome | None:
    """Reserve (unless done already), stream, deliver, then charge. Refusals are answered via ``target``."""
    jobs = bot.services.jobs
    with jobs.tracked():  # a shutdown cancels the job (refunding it) instead of cutting it off mid-write
        if reservation is None:
            try:
                reservation = await jobs.reserve(spec)
            except (QuotaExceeded, TooManyJobs, ShuttingDown, PromptRefused) as exc:
                await target.withdraw(error_text(exc, target.locale))
                return None
        message = JobMessage(bot, target, spec, reservation.job_id, user)
        message.publisher.start()
        try:
            outcome = await jobs.run(reservation, spec, message)
        finally:
            await message.publisher.close()  # pending previews are dropped: the result wins
        if outcome.stopped == "message deleted":  # nobody is there to deliver to: not charged
            if outcome.delivered:
                await jobs.settle(outcome, [])
            return outcome
        if not outcome.delivered:  # refunded by the job service
            err = outcome.first_error
            if outcome.stopped:
                text = messages.stopped(outcome.stopped, outcome.stopped_by, locale=target.locale)
            elif err is not None:
                text = messages.api_error(err, target.locale)
            else:
                text = messages.text(target.locale, messages.NO_IMAGE)
            try:
                await message.show_failure(text)
            except (discord.HTTPException, MessageGone) as exc:
                log.warning("job %s: could not show how it ended (%s)", outcome.job_id, type(exc).__name__)
            return outcome
        try:
            delivered = await message.deliver(outcome)
        except asyncio.CancelledError:
            await jobs.cancelled(outcome, error="stopped before the result was delivered")
            raise
        except MessageGone:
            log.info("job %s: its message was deleted before the result; not charged", outcome.job_id)
            await jobs.settle(outcome, [])
            return outcome
        except Exception as exc:
            if isinstance(exc, discord.HTTPException):
                log.warning("job %s: the result could not be delivered (%s %s)", outcome.job_id, exc.status, exc.code)
            else:
                log.exception("job %s: delivering the result failed", outcome.job_id)
            await jobs.settle(outcome, [])  # not charged: nothing reached the user
            await message.tell_undelivered(exc)
            return outcome
        await jobs.settle(outcome, delivered)
        return outcome


async def start_interaction_job(bot: ImageBotBase, interaction: discord.Interaction, spec: JobSpec) -> None:
    """Reserve before acknowledging, so a refusal is one private reply and nothing public appears; then
    defer (public "thinking") and run. Reserving is one small SQLite transaction; should it ever be slow,
    the bot defers first so the 3-second acknowledgement is never missed."""
    require_bot_permissions(interaction.app_permissions)  # refused privately by the error path, nothing reserved
    jobs = bot.services.jobs
    with jobs.tracked():
        reservation: Reservation | None = None
        try:
            reservation = await asyncio.wait_for(jobs.reserve(spec), RESERVE_BEFORE_ACK)
        except (QuotaExceeded, TooManyJobs, ShuttingDown, PromptRefused) as exc:
            await reply_ephemeral(interaction, error_text(exc, locale_of(interaction)))
            return
        except TimeoutError:
            log.warning("quota reservation took over %.1fs; acknowledging first", RESERVE_BEFORE_ACK)
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException:
            if reservation is not None:
                await jobs.abandon(reservation, spec, error="interaction could not be acknowledged")
            raise
        await run_job(bot, InteractionTarget(interaction), spec, interaction.user, reservation)
