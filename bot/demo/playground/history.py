"""The channels' history kept in the playground's folder, so a restart finds the conversation where it was.

Saved when the playground stops: the messages (private answers excepted, as Discord forgets them too) and
the files on the local CDN they show, under ``messages.json`` and ``cdn/``. Links name the local Discord's
address, which changes at each start, so they are stored with a placeholder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bot.demo.discord.payloads import FLAG_EPHEMERAL, FLAG_LOADING
from bot.demo.playground.live import LiveDiscord

HISTORY = "messages.json"
BASE = "{{local-discord}}"
_SAFE = re.compile(r"^[\w.\-]+$")


def _file_path(folder: Path, att_id: str, filename: str) -> Path | None:
    if not att_id.isdigit() or not _SAFE.match(filename):
        return None
    return folder / "cdn" / att_id / filename


def save(fd: LiveDiscord, folder: Path) -> int:
    """Write the history; returns the number of messages kept."""
    kept = [
        m for m in sorted(fd.messages.values(), key=lambda m: int(m["id"]))
        if not int(m.get("flags") or 0) & (FLAG_EPHEMERAL | FLAG_LOADING)
    ]  # fmt: skip
    files: list[dict[str, str]] = []
    for msg in kept:
        for att in msg.get("attachments") or []:
            found = fd.cdn_files.get((str(att["id"]), att["filename"]))
            path = _file_path(folder, str(att["id"]), att["filename"])
            if found is None or path is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(found[0])
            files.append({"id": str(att["id"]), "filename": att["filename"], "content_type": found[1]})
    text = json.dumps({"messages": kept, "files": files}, ensure_ascii=False).replace(fd.base_url, BASE)
    (folder / HISTORY).write_text(text, encoding="utf-8")
    return len(kept)


def load(fd: LiveDiscord, folder: Path) -> int:
    """Put a saved history back into a started local Discord; returns the number of messages restored."""
    path = folder / HISTORY
    if not path.is_file():
        return 0
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8").replace(BASE, fd.base_url))
    except (OSError, ValueError):
        return 0  # a damaged history is not worth refusing to start over
    for f in doc.get("files") or []:
        file_path = _file_path(folder, str(f.get("id")), str(f.get("filename")))
        if file_path is not None and file_path.is_file():
            fd.cdn_files[(str(f["id"]), str(f["filename"]))] = (file_path.read_bytes(), str(f.get("content_type")))
    count = 0
    for msg in doc.get("messages") or []:
        if isinstance(msg, dict) and fd.world.guild_of_channel(int(msg.get("channel_id") or 0)) is not None:
            fd._store(msg)
            count += 1
    fd.publish()
    return count
