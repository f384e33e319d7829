"""A fake OpenAI Images API (aiohttp) for tests and as a demo backend: ``python -m bot.demo.images``."""

from .server import FakeImagesAPI, Fault, RecordedFile, RecordedRequest, SentEvent

__all__ = ["FakeImagesAPI", "Fault", "RecordedFile", "RecordedRequest", "SentEvent"]
