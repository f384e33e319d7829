"""Checks on what the bot sends: bodies against ``bot/demo/discord/discord_subset.json``, mentions, uploads."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from bot.demo.discord.records import RecordedRequest, error

SCHEMA_PATH = Path(__file__).resolve().parent / "discord_subset.json"


@cache
def _schema_doc() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def _validator(route_key: str) -> Any:
    from jsonschema import Draft202012Validator

    doc = _schema_doc()
    schema = dict(doc["routes"][route_key]["schema"])
    if doc.get("$defs"):
        schema["$defs"] = doc["$defs"]
    return Draft202012Validator(schema)


def validate_discord_body(route_key: str, body: Any) -> list[str]:
    """Validate a request body against the extracted Discord schema; returns readable error strings."""
    from jsonschema.exceptions import best_match

    errors = []
    for err in _validator(route_key).iter_errors(body):
        # anyOf/oneOf errors are vague at the top; show the best sub-error as well
        detail = best_match([err]) if err.context else err
        where = "/".join(str(p) for p in detail.absolute_path) or "<root>"
        errors.append(f"{route_key}: at {where}: {detail.message[:300]}")
    return errors


class Checks:
    """Record-and-answer helpers of the REST handlers (mixed into ``FakeDiscord``)."""

    validation_errors: list[str]
    mention_violations: list[dict[str, Any]]
    upload_limit: int

    def _validate(self, rec: RecordedRequest, route_key: str, body: Any) -> bool:
        errors = validate_discord_body(route_key, body)
        if errors:
            self.validation_errors.extend(f"{rec.method} {rec.path}: {e}" for e in errors)
            return False
        return True

    def _check_mentions(self, rec: RecordedRequest, body: Any) -> None:
        if not isinstance(body, dict) or not body.get("content"):
            return
        am = body.get("allowed_mentions")
        if not isinstance(am, dict) or am.get("parse") != []:
            self.mention_violations.append(
                {"method": rec.method, "path": rec.path, "content": body.get("content"), "allowed_mentions": am}
            )

    def _invalid_body(self, rec: RecordedRequest) -> tuple[int, Any]:
        errs = [e for e in self.validation_errors if e.startswith(f"{rec.method} {rec.path}:")][-5:]
        return error(400, 50035, "Invalid Form Body", errors={"_fake": errs})

    def _check_uploads(self, rec: RecordedRequest) -> tuple[int, Any] | None:
        if len(rec.files) > 10:
            return error(400, 50035, "Invalid Form Body", errors={"files": "max 10 attachments"})
        if sum(len(f.data) for f in rec.files) > self.upload_limit:
            return error(413, 40005, "Request entity too large")
        return None
