"""Discord glue shared by every kind of job: the progress message, the result, and its buttons.

``run_job`` takes a validated ``JobSpec`` and a place to answer (``Target``): it reserves quota, shows the
queue position and live previews (through ``bot.progress``), and finally edits in the full-resolution
images with an embed and the Reroll / Edit / Delete buttons. Buttons are ``DynamicItem``s whose custom id
carries the job id, so they keep working after a restart (the job itself is in the database).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import discord

from bot.images.types import CompletedImage, PartialImage
from bot.imaging import fit_upload, make_preview, pack_uploads
from bot.jobs import ImageOptions, JobOutcome, JobSpec, TooManyJobs
from bot.messages import api_error, clip, user_error
from bot.progress import ProgressPublisher, ProgressView
from bot.quota import QuotaExceeded, Reservation
from cogs.errors import reply_ephemeral

if TYPE_CHECKING:
    from bot.app import ImageBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
UPLOAD_MARGIN = 64 * 1024  # room for the JSON part of a multipart upload
EMBED_COLOUR = discord.Colour(0x10A37F)
RESERVE_BEFORE_ACK = 1.5  # seconds; Discord drops interactions not acknowledged within 3


def upload_budget(limit: int) -> int:
    """Bytes of files one message may carry: the server's limit less room for the JSON part."""
    return max(limit // 2, limit - UPLOAD_MARGIN)


# --- where a job's message lives ----------------------------------------------------------------


class Target:
    """The message a job reports into: an interaction's response, or a message the bot posted."""

    upload_limit: int
    channel: discord.abc.Messageable | None

    async def edit(self, **fields: Any) -> discord.Message | None:
        raise NotImplementedError

    async def send_extra(self, **fields: Any) -> discord.Message | None:
        if self.channel is None:
            return None
        return await self.channel.send(allowed_mentions=NO_MENTIONS, **fields)

    async def withdraw(self, text: str) -> None:
        """Replace the progress message by a private note (quota refusals and the like)."""
        await self.edit(content=text, attachments=[], embeds=[], view=None)


class InteractionTarget(Target):
    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.upload_limit = upload_budget(interaction.filesize_limit)
        self.channel = interaction.channel  # type: ignore[assignment]
        self._fallback: discord.Message | None = None

    async def edit(self, **fields: Any) -> discord.Message | None:
        if self._fallback is not None:
            return await self._fallback.edit(allowed_mentions=NO_MENTIONS, **fields)
        try:
            return await self.interaction.edit_original_response(allowed_mentions=NO_MENTIONS, **fields)
        except (discord.NotFound, discord.Forbidden, discord.HTTPException) as exc:
            if getattr(exc, "status", 0) not in (401, 404) or self.channel is None:
                raise
            # The 15-minute interaction token expired: post the result as a channel message instead.
            log.info("interaction token expired; answering in the channel instead")
            files = fields.pop("attachments", None) or []  # discord.File objects: upload them anew
            user = self.interaction.user
            content = fields.pop("content", None) or ""
            self._fallback = await self.channel.send(
                content=clip(f"{user.mention} {content}", 2000),
                files=files,
                allowed_mentions=discord.AllowedMentions(users=[user]),
                **fields,
            )
            return self._fallback

    async def withdraw(self, text: str) -> None:
        try:
            await self.interaction.delete_original_response()
        except discord.HTTPException:
            pass
        await self.interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


class MessageTarget(Target):
    """A message the bot posted itself (e.g. its reply to someone's reply)."""

    def __init__(self, message: discord.Message, upload_limit: int) -> None:
        self.message = message
        self.channel = message.channel
        self.upload_limit = upload_budget(upload_limit)

    async def edit(self, **fields: Any) -> discord.Message | None:
        self.message = await self.message.edit(allowed_mentions=NO_MENTIONS, **fields)
        return self.message

    async def withdraw(self, text: str) -> None:
        await self.edit(content=text, attachments=[], embeds=[], view=None)


# --- rendering ------------------------------------------------------------------------------------


def _prompt_line(prompt: str) -> str:
    one_line = " ".join(prompt.split())
    return "> " + discord.utils.escape_markdown(clip(one_line, 300))


def progress_content(view: ProgressView, prompt: str) -> str:
    started = f"<t:{int(view.started_at)}:R>"
    if view.status == "queued":
        head = f"⏳ **Queued**, position {view.queue_position} · requested {started}"
    else:
        head = f"🎨 **Generating…** started {started}"
    if len(view.slots) == 1:
        s = view.slots[0]
        if s.frame:
            head += f" · frame {s.frame}/{s.total}"
    else:
        parts = []
        for s in view.slots:
            state = (
                "done"
                if s.done and not s.failed
                else "failed"
                if s.failed
                else (f"frame {s.frame}/{s.total}" if s.frame else "waiting")
            )
            parts.append(f"{s.slot + 1}: {state}")
        head += "\n" + " · ".join(parts)
    return clip(f"{head}\n{_prompt_line(prompt)}", 2000)


def result_embed(
    spec: JobSpec, job_id: int, user: discord.abc.User, model: str, images: list[CompletedImage]
) -> discord.Embed:
    title = "Edited image" if spec.kind == "edit" else "Imagined"
    embed = discord.Embed(title=title, description=clip(spec.prompt, 1500), colour=EMBED_COLOUR)
    first = images[0] if images else None
    o = spec.options
    embed.add_field(name="Model", value=clip(model, 100), inline=True)
    embed.add_field(name="Size", value=(first.size if first and first.size else o.size) or "auto", inline=True)
    embed.add_field(
        name="Quality", value=(first.quality if first and first.quality else o.quality) or "auto", inline=True
    )
    if o.background or (first and first.background):
        embed.add_field(name="Background", value=(first.background if first else None) or o.background or "auto")
    embed.add_field(name="Format", value=(first.output_format if first else None) or o.output_format or "png")
    if o.count > 1:
        embed.add_field(name="Images", value=f"{len(images)}/{o.count}")
    embed.set_footer(text=clip(f"Requested by {user.display_name} · job #{job_id}", 200))
    return embed


def file_name(job_id: int, index: int, extension: str) -> str:
    return f"imagebot-{job_id}-{index + 1}.{extension}"


# --- one job's message ----------------------------------------------------------------------------


class JobMessage:
    """Observer of one job: paced previews while it runs, then the result."""

    def __init__(self, bot: ImageBot, target: Target, spec: JobSpec, job_id: int, user: discord.abc.User) -> None:
        s = bot.services.settings
        self.bot, self.target, self.spec, self.job_id, self.user = bot, target, spec, job_id, user
        self.started = time.time()
        self.publisher = ProgressPublisher(
            send=self._send_progress,
            # A job that shows nothing yet goes first in the preview queue.
            render=lambda raw: make_preview(raw, s.preview_max_side, urgent=not self.publisher.shown_frame),
            slots=spec.options.count,
            frames_per_slot=max(1, s.partial_images),
            min_interval=s.preview_min_interval,
            status_grace=s.status_grace,
            started_at=self.started,
        )

    # JobObserver
    def queued(self, position: int) -> None:
        self.publisher.set_queued(position)

    def generating(self) -> None:
        self.publisher.set_generating()

    def partial(self, slot: int, frame: PartialImage) -> None:
        self.publisher.frame(slot, frame.index, frame)  # still encoded: decoded only if rendered

    def slot_done(self, slot: int, image: CompletedImage | None) -> None:
        self.publisher.slot_finished(slot, failed=image is None)

    async def _send_progress(self, view: ProgressView) -> None:
        files = [
            discord.File(_bytes_io(s.jpeg), filename=f"preview-{s.slot + 1}.jpg")
            for s in view.slots
            if s.jpeg is not None and not s.done
        ]
        fields: dict[str, Any] = {"content": progress_content(view, self.spec.prompt)}
        if files or view.new_frame:
            fields["attachments"] = files
        await self.target.edit(**fields)

    async def deliver(self, outcome: JobOutcome) -> None:
        await self.publisher.close()  # pending previews are dropped: the result wins
        images = outcome.delivered
        if not images:
            err = outcome.first_error
            text = api_error(err) if err is not None else "No image came back. Please try again."
            await self.target.edit(
                content=clip(f"❌ {text}\n{_prompt_line(self.spec.prompt)}", 2000),
                attachments=[],
                embeds=[],
                view=ResultView(outcome.job_id, include_edit=False),
            )
            return
        limit = self.target.upload_limit
        uploads = [await fit_upload(im.data, im.output_format, limit) for im in images]
        groups = pack_uploads([len(u.data) for u in uploads], limit)
        files = [
            discord.File(_bytes_io(u.data), filename=file_name(outcome.job_id, i, u.extension))
            for i, u in enumerate(uploads)
        ]
        elapsed = int(time.time() - self.started)
        content = f"✅ Done in {elapsed}s"
        failed = len(outcome.images) - len(images)
        if failed:
            content += (
                f" · {failed} of {len(outcome.images)} images failed ({api_error(outcome.first_error or Exception())})"
            )
        if any(u.reencoded for u in uploads):
            content += " · re-encoded to fit Discord's upload limit"
        embed = result_embed(self.spec, outcome.job_id, self.user, self.bot.services.settings.image_model, images)
        view = ResultView(outcome.job_id)
        message = await self.target.edit(
            content=clip(content, 2000), attachments=[files[i] for i in groups[0]], embeds=[embed], view=view
        )
        for group in groups[1:]:
            await self.target.send_extra(files=[files[i] for i in group])
        if message is not None:
            await self.bot.services.quota.set_message(outcome.job_id, message.id)


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


async def run_job(
    bot: ImageBot, target: Target, spec: JobSpec, user: discord.abc.User, reservation: Reservation | None = None
) -> JobOutcome | None:
    """Reserve (unless done already), stream, deliver. Quota refusals are answered via ``target``."""
    jobs = bot.services.jobs
    with jobs.tracked():  # a shutdown cancels the job (refunding it) instead of cutting it off mid-write
        if reservation is None:
            try:
                reservation = await jobs.reserve(spec)
            except (QuotaExceeded, TooManyJobs) as exc:
                await target.withdraw(user_error(exc) or str(exc))
                return None
        message = JobMessage(bot, target, spec, reservation.job_id, user)
        message.publisher.start()
        try:
            outcome = await jobs.run(reservation, spec, message)
        finally:
            await message.publisher.close()
        try:
            await message.deliver(outcome)
        except discord.HTTPException:
            log.exception("could not deliver the result of job %s", outcome.job_id)
        return outcome


async def start_interaction_job(bot: ImageBot, interaction: discord.Interaction, spec: JobSpec) -> None:
    """Reserve before acknowledging, so a refusal is one private reply and nothing public appears; then
    defer (public "thinking") and run. Reserving is one small SQLite transaction; should it ever be slow,
    the bot defers first so the 3-second acknowledgement is never missed."""
    jobs = bot.services.jobs
    with jobs.tracked():
        reservation: Reservation | None = None
        try:
            reservation = await asyncio.wait_for(jobs.reserve(spec), RESERVE_BEFORE_ACK)
        except (QuotaExceeded, TooManyJobs) as exc:
            await reply_ephemeral(interaction, user_error(exc) or str(exc))
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


def role_ids(user: discord.abc.User) -> tuple[int, ...]:
    roles = getattr(user, "roles", None) or []
    return tuple(r.id for r in roles)


# --- buttons --------------------------------------------------------------------------------------


class ResultView(discord.ui.View):
    def __init__(self, job_id: int, *, include_edit: bool = True) -> None:
        super().__init__(timeout=None)
        self.add_item(RerollButton(job_id))
        if include_edit:
            self.add_item(EditButton(job_id))
        self.add_item(DeleteButton(job_id))


class _JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"$^"):  # abstract
    def __init__(self, job_id: int, *, label: str, emoji: str, style: discord.ButtonStyle, action: str) -> None:
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=f"imagebot:{action}:{job_id}")
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: Any, /
    ) -> _JobButton:
        return cls(int(match["job"]))  # type: ignore[call-arg]


class RerollButton(_JobButton, template=r"imagebot:reroll:(?P<job>\d+)"):
    def __init__(self, job_id: int) -> None:
        super().__init__(job_id, label="Reroll", emoji="🎲", style=discord.ButtonStyle.primary, action="reroll")

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        bot: ImageBot = interaction.client  # type: ignore[assignment]
        job = await bot.services.quota.get_job(self.job_id)
        if job is None:
            await interaction.response.send_message("That job is no longer known to the bot.", ephemeral=True)
            return
        spec = JobSpec(
            kind=job.kind,  # type: ignore[arg-type]
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            role_ids=role_ids(interaction.user),
            prompt=job.prompt,
            options=ImageOptions.from_settings(job.settings),
            parent_job_id=job.id if job.kind == "edit" else None,
        )
        if spec.kind == "edit":
            from cogs.edit import reroll_edit

            await interaction.response.defer(thinking=True)
            await reroll_edit(bot, interaction, job, spec)
            return
        await start_interaction_job(bot, interaction, spec)


class EditButton(_JobButton, template=r"imagebot:edit:(?P<job>\d+)"):
    def __init__(self, job_id: int) -> None:
        super().__init__(job_id, label="Edit", emoji="✏️", style=discord.ButtonStyle.secondary, action="edit")

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        from cogs.edit import open_edit_modal

        await open_edit_modal(interaction, interaction.message)


class DeleteButton(_JobButton, template=r"imagebot:delete:(?P<job>\d+)"):
    def __init__(self, job_id: int) -> None:
        super().__init__(job_id, label="Delete", emoji="🗑️", style=discord.ButtonStyle.danger, action="delete")

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        bot: ImageBot = interaction.client  # type: ignore[assignment]
        job = await bot.services.quota.get_job(self.job_id)
        is_owner = job is not None and job.user_id == interaction.user.id
        perms = interaction.permissions
        if not (is_owner or perms.manage_messages):
            await interaction.response.send_message(
                "Only the person who asked for this image, or a moderator with Manage Messages, can delete it.",
                ephemeral=True,
            )
            return
        await interaction.response.defer()
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            if interaction.message is not None:
                await interaction.message.delete()


DYNAMIC_ITEMS = (RerollButton, EditButton, DeleteButton)
