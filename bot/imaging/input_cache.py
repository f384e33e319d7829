"""The prepared inputs of recent edit jobs, kept so that Reroll needs no download. No Discord.

Bounded by a memory budget (the setting ``EDIT_CACHE_MB``: the inputs' bytes plus a fixed allowance per
entry) and by count, least recently used first out; lost on restart, when Reroll fetches the inputs again
from Discord (``cogs/edit/loader.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from bot.images_api.types import InputImage


@dataclass(frozen=True, slots=True)
class EditInputs:
    images: tuple[InputImage, ...]
    mask: InputImage | None = None
    markup: InputImage | None = None  # a scribbled edit's layer (never with ``mask``)

    @property
    def nbytes(self) -> int:
        """What keeping these inputs costs: their bytes, plus the objects around each of them."""
        parts = [*self.images, *(x for x in (self.mask, self.markup) if x is not None)]
        return sum(len(i.data) + ENTRY_OVERHEAD for i in parts)


ENTRY_OVERHEAD = 1024  # bytes per kept input beyond its data (objects, names), so tiny inputs count too


class InputCache:
    def __init__(self, max_bytes: int = 48 * 1024 * 1024, max_items: int = 64) -> None:
        self.max_bytes, self.max_items = max_bytes, max_items
        self._items: OrderedDict[int, EditInputs] = OrderedDict()
        self._bytes = 0

    def put(self, job_id: int, inputs: EditInputs) -> None:
        if inputs.nbytes > self.max_bytes:
            return
        self.pop(job_id)
        self._items[job_id] = inputs
        self._bytes += inputs.nbytes
        while self._bytes > self.max_bytes or len(self._items) > self.max_items:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes

    def get(self, job_id: int) -> EditInputs | None:
        inputs = self._items.get(job_id)
        if inputs is not None:
            self._items.move_to_end(job_id)
        return inputs

    def pop(self, job_id: int) -> None:
        old = self._items.pop(job_id, None)
        if old is not None:
            self._bytes -= old.nbytes
