"""A job's result as Discord will take it: every image fitted under the upload limit (re-encoded in a
thread when too large) and grouped into as few messages as the limit allows (``bot/imaging/work.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.images_api.types import CompletedImage
from bot.imaging.work import Upload, fit_upload, pack_uploads


@dataclass(frozen=True, slots=True)
class UploadPlan:
    files: list[Upload]  # one per image, in order
    messages: list[list[int]]  # indexes into ``files``: the first message's, then each extra message's

    @property
    def reencoded(self) -> bool:
        return any(u.reencoded for u in self.files)


async def plan_uploads(images: Sequence[CompletedImage], limit: int) -> UploadPlan:
    files = [await fit_upload(im.data, im.output_format, limit) for im in images]
    return UploadPlan(files, pack_uploads([len(u.data) for u in files], limit))
