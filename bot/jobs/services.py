"""The services the Discord layer uses, created once in ``bot.__main__`` and handed to the bot. No Discord.

Each part of the Discord layer takes what it uses: the ledger (jobs, results' buttons), moderation and
reports (``/quota``), the prompt rules, and the database itself for storage chores (the command-sync hash,
crash recovery at start, the health check)."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

from bot.config.settings import Settings
from bot.images_api.client import ImagesClient
from bot.images_api.models import ModelInfo
from bot.jobs.model_choice import ModelChoice
from bot.jobs.payers import Payers
from bot.jobs.service import JobService
from bot.quota import Ledger, Moderation, Reports
from bot.quota.tenants import TenantStore
from bot.rules import RuleStore
from bot.storage.database import Database


@dataclass
class Services:
    settings: Settings
    images: ImagesClient
    db: Database
    ledger: Ledger
    moderation: Moderation
    reports: Reports
    jobs: JobService
    model: ModelInfo
    rules: RuleStore
    tenants: TenantStore
    payers: Payers
    http: aiohttp.ClientSession  # checks a key a server brings against its API before it is stored
    model_choice: ModelChoice | None = field(default=None)  # which configured models each server allows
