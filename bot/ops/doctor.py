"""``./imagebot doctor`` (``python -m bot doctor``): check a deployment without starting the bot.

One line per check, ``ok`` or ``FAIL`` with what is wrong and how to fix it (``note`` lines inform and never
fail): the settings (and a note naming the bot-wide spending caps, or that there are none), the Discord login
(REST only, no gateway session), the bot's servers and the channel permissions it lacks there, the Images API
key and ``IMAGE_MODEL`` (models list, no image is generated), the database, and the invite URL with exactly
the permissions the bot needs. Exit status 0 only if every check passed. Nothing printed contains the token or
the API key.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from bot.config.exposure import cleartext_warnings
from bot.config.parsers import without_password
from bot.config.redaction import redact
from bot.config.settings import ConfigError, Settings, load_settings
from bot.images_api.stream_gate import no_stream_key
from bot.ops import permissions as perms
from bot.ops.doctor_api import Report, check_images_api, safe_url
from bot.storage.db import migrations

DISCORD_API = "https://discord.com/api/v10"
TIMEOUT = aiohttp.ClientTimeout(total=20, sock_connect=10)
MAX_GUILDS = 25  # servers checked channel by channel; beyond that only listed


class DiscordREST:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base = http, base.rstrip("/")
        self.headers = {"Authorization": f"Bot {token}", "User-Agent": "DiscordBot (imagebot doctor, 0.1)"}

    async def get(self, path: str) -> tuple[int, Any]:
        for _ in range(3):
            async with self.http.get(self.base + path, headers=self.headers) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
                if resp.status == 429 and isinstance(body, dict):
                    await asyncio.sleep(min(5.0, float(body.get("retry_after") or 1.0)))
                    continue
                return resp.status, body
        return 429, None


def _discord_error(status: int, body: Any) -> str:
    message = body.get("message") if isinstance(body, dict) else None
    return f"HTTP {status}" + (f" ({message})" if message else "")


async def check_discord(settings: Settings, http: aiohttp.ClientSession, report: Report) -> int | None:
    """Login, servers and channel permissions; returns the application id for the invite (None if unknown)."""
    base = settings.discord_api_base or DISCORD_API
    api = DiscordREST(http, base, settings.discord_token)
    try:
        status, me = await api.get("/users/@me")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        report.fail("discord", f"cannot reach Discord at {base}: {type(exc).__name__}; check the network/proxy")
        return None
    if status == 401:
        report.fail(
            "discord",
            "Discord rejected DISCORD_TOKEN (401 Unauthorized): in the Developer Portal open your application → "
            "Bot → Reset Token, and put the new token in .env as DISCORD_TOKEN",
        )
        return None
    if status != 200 or not isinstance(me, dict):
        report.fail("discord", f"GET /users/@me answered {_discord_error(status, me)}; try again later")
        return None
    bot_id = int(me["id"])
    name = me.get("username", "?")
    if not me.get("bot", False):
        report.fail("discord", f"the token logs in as {name}, a user account, not a bot: use the Bot tab's token")
        return None
    report.ok("discord", f"logged in as {name} (id {bot_id})")
    app_id = bot_id
    status, app = await api.get("/oauth2/applications/@me")
    if status == 200 and isinstance(app, dict) and app.get("id"):
        app_id = int(app["id"])
        check_public(settings, bool(app.get("bot_public")), report)
    status, guilds = await api.get("/users/@me/guilds")
    if status != 200 or not isinstance(guilds, list):
        report.fail("servers", f"cannot list the bot's servers: {_discord_error(status, guilds)}")
        return app_id
    if not guilds:
        report.fail("servers", "the bot is in no server: open the invite URL below and add it to yours")
        return app_id
    listed = ", ".join(f"{g.get('name', '?')} ({g['id']})" for g in guilds[:MAX_GUILDS])
    more = f" and {len(guilds) - MAX_GUILDS} more" if len(guilds) > MAX_GUILDS else ""
    report.ok("servers", f"in {len(guilds)} server(s): {listed}{more}")
    for g in guilds[:MAX_GUILDS]:
        await check_guild(api, int(g["id"]), str(g.get("name", "?")), bot_id, report)
    return app_id


def check_public(settings: Settings, public: bool, report: Report) -> None:
    """Who can add the bot (Developer Portal → Bot → Public Bot), and what that means for the API key."""
    name = "access"
    mode = settings.operator_key_servers
    allowed = len(settings.allowed_guild_ids)
    if mode == "none":
        report.ok(name, "OPERATOR_KEY_SERVERS=none: your API key pays for no server; each server brings its own key")
        return
    if not public and mode == "auto":
        report.ok(
            name, "the application is private (Public Bot off): only you can add the bot, your key pays for its servers"
        )
        return
    uncapped = settings.bot_monthly_budget_usd is None and settings.bot_user_daily_limit is None
    if public:
        text = (
            "the application is public: anyone with its invite link can add the bot to their server. Your API key "
            f"pays only for the {allowed} server(s) in ALLOWED_GUILD_IDS and those you approve with /operator approve"
        )
        if not allowed:
            text += " (none listed yet, so your own servers too need approving)"
        text += ". If only you should add it, turn Public Bot off: Developer Portal → your application → Bot"
        if uncapped:
            text += "; and you turned both bot-wide caps off (BOT_MONTHLY_BUDGET_USD, BOT_USER_DAILY_LIMIT)"
        report.warn(name, text)
        return
    report.ok(name, f"your API key pays for {allowed} server(s) in ALLOWED_GUILD_IDS and the approved ones")


async def check_guild(api: DiscordREST, guild_id: int, guild_name: str, bot_id: int, report: Report) -> None:
    label = f"server {guild_name}"
    s1, guild = await api.get(f"/guilds/{guild_id}")
    s2, member = await api.get(f"/guilds/{guild_id}/members/{bot_id}")
    s3, channels = await api.get(f"/guilds/{guild_id}/channels")
    answers = ((s1, guild, dict), (s2, member, dict), (s3, channels, list))
    bad = next(((s, b) for s, b, kind in answers if s != 200 or not isinstance(b, kind)), None)
    if bad is not None:
        report.fail(label, f"cannot read the server's channels and roles: {_discord_error(*bad)}")
        return
    roles = guild.get("roles") or []
    member_roles = [int(r) for r in member.get("roles") or []]
    owner = guild.get("owner_id")
    base = perms.base_permissions(
        guild_id=guild_id,
        owner_id=int(owner) if owner else None,
        member_id=bot_id,
        member_roles=member_roles,
        roles=roles,
    )
    role_name = _bot_role_name(roles, member_roles)
    missing_base = perms.names(base)
    if missing_base:
        report.fail(
            label,
            f"the bot's roles lack {', '.join(missing_base)} server-wide: Server Settings → Roles → {role_name} → "
            "allow them (or re-invite the bot with the URL below)",
        )
    hidden: list[str] = []
    lacking = 0
    text_channels = [c for c in channels if int(c.get("type", -1)) in perms.MESSAGE_CHANNEL_TYPES]
    for ch in sorted(text_channels, key=lambda c: (int(c.get("type", 0)), int(c.get("position") or 0))):
        have = perms.channel_permissions(base, ch, guild_id=guild_id, member_id=bot_id, member_roles=member_roles)
        missing = perms.names(have)
        if not missing:
            continue
        if not have & perms.VIEW_CHANNEL:
            hidden.append(f"#{ch.get('name', ch.get('id'))}")
            continue
        lacking += 1
        if missing_base and set(missing) <= set(missing_base):
            continue  # already reported server-wide
        report.fail(
            f"{label} #{ch.get('name', ch.get('id'))}",
            f"missing {', '.join(missing)}: Edit Channel → Permissions → {role_name} → allow them",
        )
    if hidden:
        report.note(
            label,
            f"cannot see {', '.join(hidden)} (View Channel denied): fine if the bot should not be used there; "
            f"otherwise allow View Channel for {role_name} in those channels",
        )
    if not missing_base and not lacking:
        report.ok(label, f"all permissions in {len(text_channels) - len(hidden)} channel(s) the bot can see")


def _bot_role_name(roles: list[Mapping[str, Any]], member_roles: list[int]) -> str:
    mine = [r for r in roles if int(r["id"]) in member_roles]
    managed = [r for r in mine if r.get("managed")]
    chosen = (managed or mine or [{"name": "the bot's role"}])[0]
    return f"role {chosen.get('name')}"


# ---- database ---------------------------------------------------------------------------------------
def writable_by(path: Path, uid: int | None, *, search: bool = False) -> bool:
    """Whether ``uid`` may write ``path`` (and, with ``search``, enter it, as a folder): ``os.access`` for this
    process's own user (None), else from the owner, group and mode bits (for the user the bot will run as)."""
    want = os.W_OK | (os.X_OK if search else 0)
    if uid is None:
        return os.access(path, want)
    if uid == 0:
        return True
    st = path.stat()
    if st.st_uid == uid:
        bits = (st.st_mode >> 6) & 7
    elif hasattr(os, "getgrouplist") and st.st_gid in _groups_of(uid):
        bits = (st.st_mode >> 3) & 7
    else:
        bits = st.st_mode & 7
    return bits & want == want


def _groups_of(uid: int) -> set[int]:
    import pwd

    try:
        entry = pwd.getpwuid(uid)
    except KeyError:  # a uid with no account here (the container's 10001 on the host): no groups
        return set()
    return set(os.getgrouplist(entry.pw_name, entry.pw_gid))


def check_database(path: Path, report: Report, *, uid: int | None = None) -> None:
    """The SQLite database: writable by ``uid`` (None: the user running the doctor), migrated, an imagebot one."""
    name = "database"
    latest = max((v for v, _, _ in migrations()), default=0)
    if path.is_dir():
        report.fail(name, f"{path} is a directory: set DATABASE_URL to a file path, e.g. sqlite:///data/imagebot.db")
        return
    if not path.exists():
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir() or not writable_by(ancestor, uid, search=True):
            why = "is not a directory" if not ancestor.is_dir() else f"is not writable by {_this_user(uid)}"
            report.fail(name, f"cannot create {path}: {ancestor} {why}; fix DATABASE_URL or the directory")
            return
        report.ok(name, f"{path} does not exist yet; the bot creates it and applies {latest} migration(s) on start")
        return
    # SQLite writes the file and, in WAL mode, creates its -wal and -shm files beside it: both must be writable.
    for target, what, search in ((path, "the database file", False), (path.parent, "its folder", True)):
        if not writable_by(target, uid, search=search):
            report.fail(name, f"{target} ({what}) is not writable by {_this_user(uid)}: {_ownership_hint(path, uid)}")
            return
    try:
        version = _probe_sqlite(path)
    except sqlite3.Error as exc:
        text = str(exc)
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            hint = "make the file and its directory writable by the user running the bot"
        elif "not a database" in text or "malformed" in text:
            hint = "this is not an imagebot database: point DATABASE_URL at the right file"
        elif "locked" in text:
            hint = "another process holds a write lock for long: stop it or try again"
        else:
            hint = "check the file"
        report.fail(name, f"{path}: {text}: {hint}")
        return
    if version < latest:
        report.fail(
            name,
            f"{path} is at schema version {version}, this bot needs {latest}: start the bot once (it migrates on "
            "start; back the file up first)",
        )
    elif version > latest:
        report.fail(name, f"{path} is at schema version {version}, newer than this bot ({latest}): upgrade the bot")
    else:
        report.ok(name, f"{path} is writable and migrated (schema version {version})")


async def check_postgres(url: str, report: Report) -> None:
    """The PostgreSQL database answers, this user may write the bot's tables, and the schema is current."""
    import asyncpg

    from bot.storage.postgres import probe

    name, shown = "database", without_password(url)
    latest = max((v for v, _, _ in migrations("postgresql")), default=0)
    try:
        version = await probe(url, connect_timeout=5.0, write=True)
    except (OSError, TimeoutError) as exc:
        report.fail(name, f"{shown}: cannot connect ({exc.__class__.__name__}): is the server running and reachable?")
        return
    except asyncpg.InvalidPasswordError:
        report.fail(name, f"{shown}: the password was refused: fix the user and password in DATABASE_URL")
        return
    except asyncpg.InvalidCatalogNameError:
        report.fail(name, f"{shown}: the database does not exist: create it (createdb) or fix DATABASE_URL")
        return
    except asyncpg.InsufficientPrivilegeError:
        report.fail(name, f"{shown}: this user may not write the bot's tables: GRANT it, or use the owner")
        return
    except asyncpg.PostgresError as exc:
        report.fail(name, f"{shown}: {exc.__class__.__name__}: check the server's log")
        return
    if version == 0:
        report.ok(name, f"{shown} answers and is empty; the bot applies {latest} migration(s) on start")
    elif version < latest:
        report.fail(name, f"{shown} is at schema version {version}, this bot needs {latest}: start the bot once")
    elif version > latest:
        report.fail(name, f"{shown} is at schema version {version}, newer than this bot ({latest}): upgrade the bot")
    else:
        report.ok(name, f"{shown} is writable and migrated (schema version {version})")


async def note_remembered_stream_failure(settings: Settings, report: Report) -> None:
    """Say when the bot remembers (in its database) that the Images API's base URL cannot stream images."""
    key = no_stream_key(settings.openai_base_url)
    try:
        if settings.database_path is None:
            import asyncpg

            conn = await asyncpg.connect(settings.database_url, timeout=5.0)
            try:
                value = await conn.fetchval("SELECT value FROM kv WHERE key = $1", key)
            finally:
                await conn.close()
        else:
            value = await asyncio.to_thread(_read_kv_sqlite, settings.database_path, key)
    except Exception:  # the database check above already said what is wrong with it
        return
    if value:
        report.note(
            "images api",
            f"previews are off: the bot remembers that this base URL cannot stream images ({value}); see "
            "docs/setup/gateways.md to let it try again",
        )


def _read_kv_sqlite(path: Path, key: str) -> str | None:
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=3.0)
    try:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def _uid(uid: int | None) -> int | str:
    return uid if uid is not None else (os.getuid() if hasattr(os, "getuid") else "<uid>")


def _this_user(uid: int | None) -> str:
    return f"the user the bot runs as (uid {_uid(uid)})"


def _ownership_hint(path: Path, uid: int | None) -> str:
    return (
        f"give that user the folder, e.g. chown -R {_uid(uid)} {path.parent} "
        "(the Docker image runs as uid 10001: a volume created by root needs this once)"
    )


def _probe_sqlite(path: Path) -> int:
    """The schema version, after proving a write transaction can start (nothing is written)."""
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=3.0, isolation_level=None)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails on a file that is not a database
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return version
    finally:
        conn.close()


# ---- the run -------------------------------------------------------------------------------------------
def describe_settings(settings: Settings) -> str:
    parts = [
        f"model {settings.image_model}",
        "demo mode (built-in fake image service)"
        if settings.demo_mode
        else f"Images API {safe_url(settings.openai_base_url)}",
        f"database {settings.database_path or without_password(settings.database_url)}",
        f"health endpoint {settings.health_address}" if settings.health_address else "health endpoint off",
        f"logs {settings.log_format}",
    ]
    return ", ".join(parts)


def describe_caps(settings: Settings) -> str:
    """What bounds the operator's spend across all servers (BOT_USER_DAILY_LIMIT, BOT_MONTHLY_BUDGET_USD)."""
    caps = []
    if settings.bot_user_daily_limit is not None:
        caps.append(f"{settings.bot_user_daily_limit} images per person per UTC day")
    if settings.bot_monthly_budget_usd is not None:
        caps.append(f"${settings.bot_monthly_budget_usd:,.2f} per UTC month")
    if not caps:
        return (
            "no bot-wide spending cap: only each server's own limits bound what the API key pays for "
            "(BOT_USER_DAILY_LIMIT, BOT_MONTHLY_BUDGET_USD)"
        )
    return "bot-wide caps, all servers together: " + ", ".join(caps)


async def run_doctor(settings: Settings, out: TextIO) -> bool:
    report = Report(out, secrets=[settings.discord_token, settings.openai_api_key, settings.user_hash_secret or ""])
    report.ok("settings", describe_settings(settings))
    report.note("settings", describe_caps(settings))
    if settings.log_prompts:
        report.note("settings", "LOG_PROMPTS=true: prompts are written to the log")
    for warning in cleartext_warnings(settings):
        report.note("settings", "WARNING: " + warning)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        app_id = await check_discord(settings, http, report)
        await check_images_api(settings, http, report)
    if settings.database_path is None:
        await check_postgres(settings.database_url, report)
    else:
        await asyncio.to_thread(check_database, settings.database_path, report)
    if not settings.demo_mode:
        await note_remembered_stream_failure(settings, report)
    if app_id is not None:
        print(f"invite: {perms.invite_url(app_id)}", file=out)
    else:
        print(
            "invite: https://discord.com/oauth2/authorize?client_id=<application id>&scope=bot+applications.commands"
            f"&permissions={perms.INVITE_PERMISSIONS} (the application id is on the Developer Portal's General page)",
            file=out,
        )
    summary = "all checks passed" if not report.failed else f"{report.failed} check(s) failed"
    print(summary, file=out, flush=True)
    return report.failed == 0


def main(argv: list[str] | None = None, *, load: Callable[[], Settings] = load_settings) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print((__doc__ or "").strip())
        return 0
    try:
        settings = load()
    except ConfigError as exc:
        print(f"FAIL settings: {redact(str(exc))}", flush=True)
        print("1 check(s) failed (the other checks need valid settings)", flush=True)
        return 1
    try:
        return 0 if asyncio.run(run_doctor(settings, sys.stdout)) else 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a check that broke: one redacted line, not a traceback with URLs in it
        print(f"FAIL doctor: {type(exc).__name__}: {redact(str(exc))}", flush=True)
        return 1
