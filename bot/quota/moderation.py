"""Moderator settings, each change written to the audit log in the same transaction.

Limits (user, role, server default), budget, time zone, manager role, usage resets, and the
audit log that records who changed what.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final, Literal

from bot.quota import counters, reads
from bot.quota.periods import day_period, get_zone, month_period
from bot.quota.periods import validate_timezone as _validate_timezone
from bot.quota.policy import validate_limit, validate_money
from bot.quota.reads import QuotaDefaults
from bot.quota.records import (
    INHERIT,
    UNCHANGED,
    AuditEntry,
    GuildSettings,
    LimitArg,
    LimitOverride,
    UsageSummary,
    limit_repr,
    parse_ts,
    to_json,
    ts,
)
from bot.storage.completion import runs_to_completion
from bot.storage.database import Database
from bot.storage.sqlite import Tx

_SettingsColumn = Literal["timezone", "budget_usd", "manager_role_id"]
# One fixed statement per column (identifiers cannot be SQL parameters, so nothing is built from input).
_UPSERT_SETTINGS: Final[dict[str, str]] = {
    column: f"INSERT INTO guild_settings (guild_id, {column}, updated_at) VALUES (?, ?, ?) "
    f"ON CONFLICT(guild_id) DO UPDATE SET {column} = excluded.{column}, updated_at = excluded.updated_at"
    for column in ("timezone", "budget_usd", "manager_role_id")
}


class Moderation:
    """What moderators set and read: limits, budget, time zone, manager role, resets, audit log."""

    def __init__(self, db: Database, defaults: QuotaDefaults) -> None:
        self.db = db
        self.defaults = defaults

    def now(self) -> datetime:
        return self.db.now()

    async def _audit(
        self,
        tx: Tx,
        guild_id: int,
        actor_id: int,
        action: str,
        target_id: int | None,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        await tx.execute(
            "INSERT INTO audit_log (guild_id, actor_id, action, target_id, details, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (guild_id, actor_id, action, target_id, to_json(details), ts(now)),
        )

    async def get_settings(self, guild_id: int) -> GuildSettings:
        async with self.db.plain() as tx:
            return await reads.settings(tx, guild_id)

    async def _upsert_settings(self, tx: Tx, guild_id: int, column: _SettingsColumn, value: Any) -> Any:
        """Set one guild_settings column; returns its old value. A reservation in flight that read the old
        value is ordered before the change (reservations read settings once, take no server-wide lock)."""
        old = await reads.settings(tx, guild_id)
        await tx.execute(_UPSERT_SETTINGS[column], (guild_id, value, ts(self.now())))
        return getattr(old, column)

    @runs_to_completion
    async def set_budget(self, guild_id: int, usd: float | None, *, actor_id: int) -> None:
        """Monthly budget in USD for the server; None removes it."""
        value = None if usd is None else validate_money(usd, what="budget")
        async with self.db.write() as tx:
            old = await self._upsert_settings(tx, guild_id, "budget_usd", value)
            # The spend counter is kept only while there is a budget: start it again from the ledger.
            await counters.forget(tx, f"b:{int(guild_id)}:")
            await self._audit(tx, guild_id, actor_id, "set_budget", None, {"old": old, "new": value}, self.now())

    @runs_to_completion
    async def set_timezone(self, guild_id: int, tz: str, *, actor_id: int) -> str:
        """Set the server's IANA time zone (ValueError for unknown names); returns the name stored."""
        name = _validate_timezone(tz)
        async with self.db.write() as tx:
            old = await self._upsert_settings(tx, guild_id, "timezone", name)
            await self._audit(tx, guild_id, actor_id, "set_timezone", None, {"old": old, "new": name}, self.now())
        return name

    @runs_to_completion
    async def set_manager_role(self, guild_id: int, role_id: int | None, *, actor_id: int) -> None:
        async with self.db.write() as tx:
            old = await self._upsert_settings(tx, guild_id, "manager_role_id", role_id)
            await self._audit(
                tx, guild_id, actor_id, "set_manager_role", role_id, {"old": old, "new": role_id}, self.now()
            )

    async def get_manager_role(self, guild_id: int) -> int | None:
        return (await self.get_settings(guild_id)).manager_role_id

    @runs_to_completion
    async def _set_limits(
        self,
        guild_id: int,
        scope: Literal["user", "role", "server"],
        target_id: int,
        values: dict[str, LimitArg],
        actor_id: int,
    ) -> dict[str, dict[str, Any]]:
        changes = {p: v for p, v in values.items() if v is not UNCHANGED}
        for period, value in changes.items():
            if value is not INHERIT:
                validate_limit(value, what=f"{period} limit")
        if not changes:
            return {}
        async with self.db.write() as tx:
            now = self.now()
            details: dict[str, Any] = {}
            for period, value in changes.items():
                old_row = await tx.fetchone(
                    "SELECT max_images FROM quota_limits WHERE guild_id = ? AND scope = ? AND target_id = ? "
                    "AND period = ?",
                    (guild_id, scope, target_id, period),
                )
                old: Any = "inherit" if old_row is None else limit_repr(old_row["max_images"])
                details[period] = {"old": old, "new": limit_repr(value)}
                if value is INHERIT:
                    await tx.execute(
                        "DELETE FROM quota_limits WHERE guild_id = ? AND scope = ? AND target_id = ? AND period = ?",
                        (guild_id, scope, target_id, period),
                    )
                else:
                    await tx.execute(
                        "INSERT INTO quota_limits (guild_id, scope, target_id, period, max_images, updated_at, "
                        "updated_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(guild_id, scope, target_id, period) "
                        "DO UPDATE SET max_images = excluded.max_images, updated_at = excluded.updated_at, "
                        "updated_by = excluded.updated_by",
                        (guild_id, scope, target_id, period, value, ts(now), actor_id),
                    )
            action = {"user": "set_user_limit", "role": "set_role_limit", "server": "set_default_limit"}[scope]
            await self._audit(tx, guild_id, actor_id, action, target_id or None, details, now)
        return details

    async def set_user_limit(
        self,
        guild_id: int,
        user_id: int,
        *,
        daily: LimitArg = UNCHANGED,
        monthly: LimitArg = UNCHANGED,
        actor_id: int,
    ) -> dict[str, dict[str, Any]]:
        """Per-user override. int >= 0 (0 blocks), None = unlimited, INHERIT = remove, UNCHANGED = keep."""
        return await self._set_limits(guild_id, "user", user_id, {"daily": daily, "monthly": monthly}, actor_id)

    async def set_role_limit(
        self,
        guild_id: int,
        role_id: int,
        *,
        daily: LimitArg = UNCHANGED,
        monthly: LimitArg = UNCHANGED,
        actor_id: int,
    ) -> dict[str, dict[str, Any]]:
        return await self._set_limits(guild_id, "role", role_id, {"daily": daily, "monthly": monthly}, actor_id)

    async def set_default_limit(
        self,
        guild_id: int,
        *,
        daily: LimitArg = UNCHANGED,
        monthly: LimitArg = UNCHANGED,
        actor_id: int,
    ) -> dict[str, dict[str, Any]]:
        """The server default (below user and role limits, above the bot default)."""
        return await self._set_limits(guild_id, "server", 0, {"daily": daily, "monthly": monthly}, actor_id)

    async def list_limits(self, guild_id: int) -> list[LimitOverride]:
        """Every override set in the server: server default first, then roles, then users."""
        async with self.db.plain() as tx:
            rows = await tx.fetchall(
                "SELECT scope, target_id, period, max_images FROM quota_limits WHERE guild_id = ? "
                "ORDER BY CASE scope WHEN 'server' THEN 0 WHEN 'role' THEN 1 ELSE 2 END, target_id",
                (guild_id,),
            )
        grouped: dict[tuple[str, int], dict[str, int | None]] = {}
        for row in rows:
            grouped.setdefault((row["scope"], int(row["target_id"])), {})[row["period"]] = row["max_images"]
        return [
            LimitOverride(
                scope=scope,  # type: ignore[arg-type]
                target_id=target,
                daily=o.get("daily"),
                monthly=o.get("monthly"),
                daily_set="daily" in o,
                monthly_set="monthly" in o,
            )
            for (scope, target), o in grouped.items()
        ]

    @runs_to_completion
    async def reset_user(self, guild_id: int, user_id: int, *, actor_id: int) -> UsageSummary:
        """Clear the user's usage for the current day and month (jobs so far stop counting).

        Jobs still in flight stop counting too; the ledger and the budget are untouched. Returns the
        usage just before the reset (its limits ignore the user's roles: read only the counts).
        """
        async with self.db.write() as tx:
            now = self.now()
            server = await reads.settings(tx, guild_id)
            tz = get_zone(server.timezone)
            person = (
                counters.person_day(guild_id, user_id, day_period(now, tz)),
                counters.person_month(guild_id, user_id, month_period(now, tz)),
            )
            # Zeroing the counters first waits for a reservation of the person in flight, whose job the
            # last id read below then includes.
            await counters.zero_person(tx, person)
            before = await reads.usage(tx, guild_id, user_id, (), now, self.defaults)
            row = await tx.fetchone("SELECT COALESCE(MAX(id), 0) FROM jobs")
            last_job_id = int(row[0])
            await counters.set_floor(tx, person, last_job_id)
            await tx.execute(
                "INSERT INTO quota_resets (guild_id, user_id, last_job_id, reset_at, actor_id) VALUES (?, ?, ?, ?, ?)",
                (guild_id, user_id, last_job_id, ts(now), actor_id),
            )
            await self._audit(
                tx,
                guild_id,
                actor_id,
                "reset_user",
                user_id,
                {"daily_used": before.daily_used, "monthly_used": before.monthly_used, "last_job_id": last_job_id},
                now,
            )
        return before

    async def audit_log(self, guild_id: int, *, limit: int = 25, changes_only: bool = False) -> list[AuditEntry]:
        """The server's most recent audited actions, newest first; ``changes_only``: moderators' changes, without
        the refused prompts (``RuleStore.refusals_by_member`` counts those per member)."""
        only = " AND action <> 'prompt_refused'" if changes_only else ""
        async with self.db.plain() as tx:
            rows = await tx.fetchall(
                "SELECT id, guild_id, actor_id, action, target_id, details, created_at FROM audit_log "
                f"WHERE guild_id = ?{only} ORDER BY id DESC LIMIT ?",
                (guild_id, max(1, min(int(limit), 500))),
            )
        entries = []
        for r in rows:
            created = parse_ts(r["created_at"])
            assert created is not None
            entries.append(
                AuditEntry(
                    int(r["id"]),
                    int(r["guild_id"]),
                    int(r["actor_id"]),
                    r["action"],
                    r["target_id"],
                    json.loads(r["details"] or "{}"),
                    created,
                )
            )
        return entries
