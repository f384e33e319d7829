"""``/quota`` commands (placeholder until the quota feature lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import ImageBot


async def setup(bot: ImageBot) -> None:
    return None
