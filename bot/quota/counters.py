"""Quota counters: one row per limit and period, checked and consumed by one conditional write.

A reservation does not sum the ledger under a lock that covers the server; it adds its images (or its USD
estimate) to the counter of each limit that applies, with an ``UPDATE`` whose ``WHERE`` admits it only if the
sum stays within the limit. The database's row lock makes that check-and-add atomic, so two reservations can
never both take the last image, and reservations of different people touch different rows: 32 people of one
server do not wait for each other. Counters (``quota_counters.key``):

* ``d:<server|dm>:<user>:<day start>`` and ``m:...:<month start>``: a person's images in a server (or in DMs),
  in the server's time zone, kept for every reservation whatever the limits;
* ``b:<server>:<month start>``: the server's spend in USD, kept while it has a budget;
* ``e:<user>:<UTC day start>``: a person's images in every server (``BOT_USER_DAILY_LIMIT``), kept while set;
* ``B:<UTC month start>``: the whole bot's spend (``BOT_MONTHLY_BUDGET_USD``), kept while set.

A counter missing is started from the ledger (the same sums the usage display reads), so a new period, a
new time zone or a budget set again starts right. A job remembers the counters it charged (``jobs.counters``)
and settle, refund and crash recovery give back to exactly those, in the transaction that moves the job out
of reserved/running, which happens once. ``/quota reset`` zeroes the person's day and month counters and
records the last job id then (``floor_job_id``): jobs up to it no longer count there, so refunding them later
gives nothing back to those counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bot.quota.periods import Period
from bot.quota.policy import MONEY_EPSILON
from bot.quota.records import COST_SPENT, IMAGES_USED, ts
from bot.storage.sqlite import Tx

IMAGE_KINDS: Final = frozenset("dme")
MONEY_KINDS: Final = frozenset("bB")

_CHARGE_CAPPED = "UPDATE quota_counters SET used = used + ? WHERE key = ? AND used + ? <= ? AND used < ? RETURNING used"
_CHARGE = "UPDATE quota_counters SET used = used + ? WHERE key = ? RETURNING used"
_START = (
    "INSERT INTO quota_counters (key, used, floor_job_id, expires_at) VALUES (?, ?, 0, ?) ON CONFLICT (key) DO NOTHING"
)
_GIVE_BACK = "UPDATE quota_counters SET used = used + ? WHERE key = ? AND floor_job_id < ?"


@dataclass(frozen=True, slots=True)
class Counter:
    """One limit's counter for one period, and how to start it from the ledger."""

    key: str
    period: Period
    guild_id: int | None = None
    user_id: int | None = None

    @property
    def kind(self) -> str:
        return self.key[0]


def person_day(guild_id: int | None, user_id: int, day: Period) -> Counter:
    return Counter(f"d:{_where(guild_id)}:{user_id}:{ts(day.start)}", day, guild_id, user_id)


def person_month(guild_id: int | None, user_id: int, month: Period) -> Counter:
    return Counter(f"m:{_where(guild_id)}:{user_id}:{ts(month.start)}", month, guild_id, user_id)


def server_budget(guild_id: int, month: Period) -> Counter:
    return Counter(f"b:{guild_id}:{ts(month.start)}", month, guild_id)


def everywhere_day(user_id: int, day: Period) -> Counter:
    return Counter(f"e:{user_id}:{ts(day.start)}", day, None, user_id)


def bot_budget(month: Period) -> Counter:
    return Counter(f"B:{ts(month.start)}", month)


def _where(guild_id: int | None) -> str:
    return "dm" if guild_id is None else str(int(guild_id))


async def from_ledger(tx: Tx, counter: Counter, exclude_job: int = 0) -> float:
    """The counter's value as the ledger has it (jobs of the period; a person's resets apply)."""
    period = (ts(counter.period.start), ts(counter.period.end), exclude_job)
    kind = counter.kind
    if kind in "dm":
        if counter.guild_id is None:
            sql = f"SELECT {IMAGES_USED} FROM jobs WHERE guild_id IS NULL AND user_id = ? "
            params: tuple[object, ...] = (counter.user_id,)
        else:
            sql = (
                f"SELECT {IMAGES_USED} FROM jobs WHERE guild_id = ? AND user_id = ? "
                "AND id > COALESCE((SELECT last_job_id FROM quota_resets WHERE guild_id = ? AND user_id = ? "
                "ORDER BY id DESC LIMIT 1), 0) "
            )
            params = (counter.guild_id, counter.user_id, counter.guild_id, counter.user_id)
    elif kind == "e":  # the bot-wide caps count only what the operator's key pays for
        sql, params = f"SELECT {IMAGES_USED} FROM jobs WHERE user_id = ? AND payer = 'operator' ", (counter.user_id,)
    elif kind == "b":
        sql, params = f"SELECT {COST_SPENT} FROM jobs WHERE guild_id = ? ", (counter.guild_id,)
    else:
        sql, params = f"SELECT {COST_SPENT} FROM jobs WHERE payer = 'operator' ", ()
    row = await tx.fetchone(sql + "AND created_at >= ? AND created_at < ? AND id <> ?", (*params, *period))
    return float(row[0])


async def charge(
    tx: Tx, counter: Counter, amount: float, ceiling: float | None, *, exclude_job: int = 0
) -> float | None:
    """Add ``amount`` to the counter if it stays within ``ceiling`` (None: no limit, always added).

    Returns the new value, or None when refused. ``exclude_job``: a job this transaction already wrote, which
    a counter started from the ledger must not count twice.
    """
    rechecked = False
    for _ in range(3):
        if ceiling is None:
            row = await tx.fetchone(_CHARGE, (float(amount), counter.key))
        else:
            below = ceiling - MONEY_EPSILON if counter.kind in MONEY_KINDS else ceiling + 1
            row = await tx.fetchone(
                _CHARGE_CAPPED, (float(amount), counter.key, float(amount), ceiling + MONEY_EPSILON, below)
            )
        if row is not None:
            return float(row[0])
        if await value(tx, counter) is not None:
            if rechecked:
                return None  # the row is there: the limit refused it
            # On PostgreSQL the row may have been started (and committed) by another transaction after this
            # UPDATE's snapshot was taken: only a second UPDATE that sees it can refuse.
            rechecked = True
            continue
        start = await from_ledger(tx, counter, exclude_job)
        await tx.execute(_START, (counter.key, start, ts(counter.period.end)))
    raise RuntimeError(f"quota counter {counter.key} vanished while charging it")


async def value(tx: Tx, counter: Counter) -> float | None:
    row = await tx.fetchone("SELECT used FROM quota_counters WHERE key = ?", (counter.key,))
    return None if row is None else float(row[0])


LOCK_ORDER: Final = "dmbeB"
"""The order in which a transaction writes counters of different kinds (the order ``reserve`` charges
them). Every transaction that writes several counters writes them in this order, then by key, so two
transactions never wait for each other's rows in a cycle."""


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    job_id: int
    amount: float


def changes(keys: Sequence[str], job_id: int, *, images: int, usd: float) -> list[Change]:
    """What a job's counters get: ``images`` (negative: given back) to its image counters, ``usd`` to its
    money counters."""
    out = []
    for key in keys:
        amount = float(images) if key[0] in IMAGE_KINDS else usd
        if amount:
            out.append(Change(key, job_id, amount))
    return out


async def give_back(tx: Tx, batch: Sequence[Change]) -> None:
    """Apply ``batch`` in lock order. Counters zeroed by a reset after a job was written (``floor_job_id``)
    are left alone for that job."""
    for change in sorted(batch, key=lambda c: (LOCK_ORDER.index(c.key[0]), c.key, c.job_id)):
        await tx.execute(_GIVE_BACK, (change.amount, change.key, change.job_id))


async def zero_person(tx: Tx, counters: Sequence[Counter]) -> None:
    """Start ``/quota reset``: create or lock the person's counters (a reservation of theirs in flight
    finishes first), set to 0. ``set_floor`` then records the last job id they no longer count."""
    for counter in counters:
        await tx.execute(
            "INSERT INTO quota_counters (key, used, floor_job_id, expires_at) VALUES (?, 0, 0, ?) "
            "ON CONFLICT (key) DO UPDATE SET used = 0",
            (counter.key, ts(counter.period.end)),
        )


async def set_floor(tx: Tx, counters: Sequence[Counter], last_job_id: int) -> None:
    for counter in counters:
        await tx.execute("UPDATE quota_counters SET floor_job_id = ? WHERE key = ?", (last_job_id, counter.key))


async def forget(tx: Tx, prefix: str) -> int:
    """Drop counters whose key starts with ``prefix`` (a limit no longer kept: started again when needed)."""
    # substr, not LIKE: SQLite's LIKE ignores case, and 'B:' (the bot's budget) is not 'b:' (a server's)
    return await tx.execute("DELETE FROM quota_counters WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))


async def drop_expired(tx: Tx, before: datetime) -> int:
    return await tx.execute("DELETE FROM quota_counters WHERE expires_at < ?", (ts(before),))


def parse_keys(text: str | None) -> list[str]:
    return text.split() if text else []
