"""A tiny discord.py bot used only to test the fake Discord (not the product).

Run as ``python -m tests.helpers.minimal_bot`` with the repo root on PYTHONPATH (never as a script path:
``bot/demo/discord/`` would then shadow the real ``discord`` package). Environment: DISCORD_TOKEN,
DISCORD_API_BASE, DISCORD_GATEWAY_URL, optional MINIMAL_GUILD_ID (sync to that guild too), optional
MINIMAL_SHARD_ID and MINIMAL_SHARD_COUNT (serve that one shard; ``/ping`` then says which).

- ``/ping``: defers, then edits the original with content, a PNG file and a persistent button.
- ``/echo file:<attachment>``: downloads the attachment and answers with its size and a SHA-256 prefix.
- ``/ask``: opens a modal; submitting it answers with the text.
- message command ``Count attachments``: ephemeral answer with the target's attachment count.
- button ``minimal:again``: updates the message (callback type 7).
- a message that mentions the bot: replies (with ``message_reference``) echoing it, plus the size of the
  first attachment of the message or of the message it replies to.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
import zlib

import discord
import yarl
from discord import app_commands
from discord.ext import commands


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG = tiny_png()


class AgainView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Again", style=discord.ButtonStyle.primary, custom_id="minimal:again")
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        await interaction.response.edit_message(content=f"clicked by {interaction.user.name}", view=self)


class AskModal(discord.ui.Modal, title="Ask"):
    text: discord.ui.TextInput[AskModal] = discord.ui.TextInput(label="Question", custom_id="question")

    def __init__(self) -> None:
        super().__init__(custom_id="minimal:ask")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"you asked: {self.text.value}")


class MinimalBot(commands.Bot):
    async def setup_hook(self) -> None:
        self.add_view(AgainView())
        guild_id = os.environ.get("MINIMAL_GUILD_ID")
        if guild_id:
            guild = discord.Object(int(guild_id))
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or self.user is None or self.user not in message.mentions:
            return
        source = message.attachments
        if not source and message.reference and isinstance(message.reference.resolved, discord.Message):
            source = message.reference.resolved.attachments
        size = len(await source[0].read()) if source else 0
        await message.reply(f"echo: {message.content} ({size} bytes)", mention_author=False)


SHARD = os.environ.get("MINIMAL_SHARD_ID"), os.environ.get("MINIMAL_SHARD_COUNT")

bot = MinimalBot(
    command_prefix=commands.when_mentioned,
    intents=discord.Intents.default(),
    allowed_mentions=discord.AllowedMentions.none(),
    shard_id=int(SHARD[0]) if SHARD[0] else None,
    shard_count=int(SHARD[1]) if SHARD[1] else None,
)


@bot.tree.command(description="Defer, then answer with a file")
async def ping(interaction: discord.Interaction) -> None:
    await interaction.response.defer()
    content = "pong" if SHARD[0] is None else f"pong from shard {bot.shard_id}"
    await interaction.edit_original_response(
        content=content, attachments=[discord.File(io.BytesIO(PNG), "pong.png")], view=AgainView()
    )


@bot.tree.command(description="Download an attachment")
@app_commands.describe(file="any file")
async def echo(interaction: discord.Interaction, file: discord.Attachment) -> None:
    data = await file.read()
    digest = hashlib.sha256(data).hexdigest()[:12]
    await interaction.response.send_message(f"{file.filename}: {len(data)} bytes sha256:{digest}")


@bot.tree.command(description="Open a modal")
async def ask(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(AskModal())


@bot.tree.context_menu(name="Count attachments")
async def count_attachments(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.response.send_message(f"{len(message.attachments)} attachment(s)", ephemeral=True)


def main() -> None:
    # The two endpoint overrides (``bot/demo/discord.py`` explains them), set before login.
    discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
    bot.run(os.environ["DISCORD_TOKEN"], log_level=logging.DEBUG, root_logger=True)


if __name__ == "__main__":
    main()
