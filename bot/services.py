"""The services the Discord layer uses, created once in ``bot.__main__`` and handed to the bot. No Discord."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from bot.config import Settings
from bot.images.client import ImagesClient
from bot.images.models import ModelInfo
from bot.jobs import JobService
from bot.quota import QuotaStore
from bot.rules import RuleStore


@dataclass
class Services:
    settings: Settings
    db: aiosqlite.Connection
    images: ImagesClient
    quota: QuotaStore
    jobs: JobService
    model: ModelInfo
    rules: RuleStore
