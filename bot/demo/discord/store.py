"""The message store and CDN files: attachments, bot messages built from request bodies, edits."""

from __future__ import annotations

import io
import json
import mimetypes
import re
from typing import Any
from urllib.parse import quote

from bot.demo.discord.core import FakeCore
from bot.demo.discord.payloads import FLAG_EPHEMERAL, FLAG_LOADING, MESSAGE_DEFAULT, iso_now
from bot.demo.discord.records import InteractionHandle, RecordedFile, RecordedRequest


class Store(FakeCore):
    # -------------------------------------------------------------------------------- attachments
    def cdn_url(self, channel_id: int, att_id: int | str, filename: str, *, proxy: bool = False) -> str:
        """``/cdn/attachments/...`` (like cdn.discordapp.com); ``proxy`` gives the media-proxy twin."""
        prefix = "/cdn/media" if proxy else "/cdn"
        return f"{self.base_url}{prefix}/attachments/{channel_id}/{att_id}/{quote(filename)}"

    def _make_attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        channel_id: int,
        description: str | None = None,
        att_id: int | None = None,
    ) -> dict[str, Any]:
        att_id = att_id or self.snowflakes.next()
        ctype = content_type or "application/octet-stream"
        if ctype == "application/octet-stream":  # Discord sniffs the type, as discord.py sends octet-stream
            ctype = _guess_image_type(data) or mimetypes.guess_type(filename)[0] or ctype
        self.cdn_files[(str(att_id), filename)] = (data, ctype)
        att: dict[str, Any] = {
            "id": str(att_id),
            "filename": filename,
            "size": len(data),
            "url": self.cdn_url(channel_id, att_id, filename),
            "proxy_url": self.cdn_url(channel_id, att_id, filename, proxy=True),
            "content_type": ctype,
        }
        if description:
            att["description"] = description
        size = _image_size(data)
        if size is not None:
            att["width"], att["height"] = size
        return att

    def add_attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = None,
        *,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """Register a user-uploaded file on the CDN and return its Discord attachment object."""
        return self._make_attachment(data, filename, content_type, channel_id or self.channel_id)

    def cdn_bytes(self, attachment: dict[str, Any]) -> bytes:
        return self.cdn_files[(str(attachment["id"]), attachment["filename"])][0]

    # ----------------------------------------------------------------------------------- messages
    def _store(self, msg: dict[str, Any]) -> dict[str, Any]:
        mid = int(msg["id"])
        self.messages[mid] = msg
        self.message_history.setdefault(mid, []).append(json.loads(json.dumps(msg)))
        return msg

    def _attachments_from(
        self,
        rec: RecordedRequest,
        body: dict[str, Any],
        channel_id: int,
        existing: list[dict[str, Any]] | None,
    ) -> list[dict[str, Any]] | None:
        """Resolve the ``attachments`` list of a create/edit body (None: leave as is)."""
        files_by_index: dict[str, RecordedFile] = {}
        for i, f in enumerate(rec.files):
            m = re.fullmatch(r"files\[(\d+)\]", f.field)
            files_by_index[m.group(1) if m else str(i)] = f
        spec = body.get("attachments")
        if spec is None:
            if not rec.files:
                return None
            spec = [{"id": k, "filename": f.filename} for k, f in files_by_index.items()]
            keep = list(existing or [])
        else:
            keep = []
        existing_by_id = {a["id"]: a for a in existing or []}
        out = list(keep)
        for item in spec:
            aid = str(item.get("id"))
            if aid in existing_by_id and aid not in files_by_index:
                out.append(existing_by_id[aid])
                continue
            upload = files_by_index.get(aid)
            if upload is None:
                if aid in existing_by_id:
                    out.append(existing_by_id[aid])
                continue
            filename = item.get("filename") or upload.filename
            out.append(
                self._make_attachment(
                    upload.data, filename, upload.content_type, channel_id, description=item.get("description")
                )
            )
        return out

    def _resolve_embeds(self, embeds: list[dict[str, Any]], attachments: list[dict[str, Any]]) -> list[Any]:
        by_name = {a["filename"]: a for a in attachments}
        out = []
        for e in embeds:
            e = json.loads(json.dumps(e))
            e.setdefault("type", "rich")
            for key in ("image", "thumbnail"):
                media = e.get(key)
                if isinstance(media, dict) and str(media.get("url", "")).startswith("attachment://"):
                    att = by_name.get(media["url"][len("attachment://") :])
                    if att is not None:
                        media.update({"url": att["url"], "proxy_url": att["proxy_url"]})
                        if "width" in att:
                            media.update({"width": att["width"], "height": att["height"]})
            out.append(e)
        return out

    def _apply_edit(self, msg: dict[str, Any], rec: RecordedRequest, body: dict[str, Any]) -> dict[str, Any]:
        new = json.loads(json.dumps(msg))
        atts = self._attachments_from(rec, body, int(msg["channel_id"]), msg.get("attachments"))
        if atts is not None:
            new["attachments"] = atts
        if "content" in body:
            new["content"] = body["content"] or ""
        if "components" in body:
            new["components"] = body["components"] or []
        if "embeds" in body:
            new["embeds"] = self._resolve_embeds(body["embeds"] or [], new["attachments"])
        if "flags" in body and body["flags"] is not None:
            new["flags"] = (new.get("flags", 0) & (FLAG_EPHEMERAL | FLAG_LOADING)) | int(body["flags"])
        new["flags"] = new.get("flags", 0) & ~FLAG_LOADING
        new["edited_timestamp"] = iso_now()
        return self._store(new)

    def _new_bot_message(
        self,
        rec: RecordedRequest,
        body: dict[str, Any],
        channel_id: int,
        *,
        message_type: int = MESSAGE_DEFAULT,
        webhook: bool = False,
        reference: dict[str, Any] | None = None,
        extra_flags: int = 0,
        interaction: InteractionHandle | None = None,
    ) -> dict[str, Any]:
        atts = self._attachments_from(rec, body, channel_id, None) or []
        msg = self.world.message_payload(
            message_id=self.snowflakes.next(),
            channel_id=channel_id,
            author="bot",
            content=body.get("content") or "",
            attachments=atts,
            embeds=self._resolve_embeds(body.get("embeds") or [], atts),
            components=body.get("components") or [],
            flags=int(body.get("flags") or 0) | extra_flags,
            message_type=message_type,
            reference=reference,
            webhook=webhook,
        )
        if interaction is not None:
            msg.update(self._interaction_metadata(interaction))
        return self._store(msg)

    def _interaction_metadata(self, h: InteractionHandle) -> dict[str, Any]:
        """``interaction_metadata`` (and the legacy ``interaction``) Discord puts on response messages."""
        p = h.payload
        user = p["member"]["user"]
        meta: dict[str, Any] = {
            "id": p["id"],
            "type": p["type"],
            "user": user,
            "authorizing_integration_owners": p.get("authorizing_integration_owners", {}),
        }
        data = p.get("data") or {}
        if p["type"] == 2:
            meta["name"] = data.get("name", "")
            meta["command_type"] = data.get("type", 1)
        if p.get("message") is not None:
            meta["interacted_message_id"] = p["message"]["id"]
        if h.original_id is not None:
            meta["original_response_message_id"] = str(h.original_id)
        legacy = {"id": p["id"], "type": p["type"], "name": data.get("name") or data.get("custom_id", ""),
                  "user": user}  # fmt: skip
        return {"interaction_metadata": meta, "interaction": legacy}


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return None


def _guess_image_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None
