"""``python -m bench.baseline``: the bot the burst profile compares against.

What a popular bot that does not stream does, and nothing more: ``/imagine`` defers, makes one non-streaming
Images API call, decodes the JSON and the base64 (on the event loop, as such bots do), and uploads the bytes
as a follow-up. The bench's probes are ``/imagine`` commands of new members, answered the same way. No
database, no quota, no previews. Configured like the real bot by the bench (``DISCORD_TOKEN``, ``DISCORD_API_BASE``,
``DISCORD_GATEWAY_URL``, ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``); it is not a product, only a yardstick.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import signal
import sys

import aiohttp
import discord
import yarl
from discord import app_commands

log = logging.getLogger("bench.baseline")


class BaselineBot(discord.Client):
    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default(), allowed_mentions=discord.AllowedMentions.none())
        self.tree = app_commands.CommandTree(self)
        self.images_base = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
        self.api_key = os.environ.get("OPENAI_API_KEY", "")
        self.session: aiohttp.ClientSession | None = None

        @self.tree.command(name="imagine", description="Generate an image")
        @app_commands.describe(prompt="What to draw", size="Image size")
        async def imagine(interaction: discord.Interaction, prompt: str, size: str = "1024x1024") -> None:
            await self.imagine(interaction, prompt, size)

    async def setup_hook(self) -> None:
        self.session = aiohttp.ClientSession()
        await self.tree.sync()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        await super().close()

    async def imagine(self, interaction: discord.Interaction, prompt: str, size: str) -> None:
        if not prompt.strip():
            await interaction.response.send_message("Please describe the image you want.", ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        assert self.session is not None
        body = {"model": "gpt-image-2", "prompt": prompt, "size": size, "n": 1}
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with self.session.post(f"{self.images_base}/images/generations", json=body, headers=headers) as resp:
            payload = await resp.read()
        try:
            data = base64.b64decode(json.loads(payload)["data"][0]["b64_json"])
        except (ValueError, KeyError, IndexError, TypeError):
            await interaction.followup.send("The image could not be generated.")
            return
        name = f"imagebot-{interaction.id}.png"
        await interaction.followup.send(file=discord.File(io.BytesIO(data), filename=name))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type == discord.InteractionType.component:
            await interaction.response.send_message("This image is no longer known.", ephemeral=True)


async def run() -> None:
    if os.environ.get("DISCORD_API_BASE"):
        discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
    if os.environ.get("DISCORD_GATEWAY_URL"):
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
    async with BaselineBot() as bot:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(bot.start(os.environ["DISCORD_TOKEN"]))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            await bot.close()
        stopper.cancel()
        await runner


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
