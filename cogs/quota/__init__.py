"""``/quota`` (``cogs/quota/cog.py``); its pure helpers are in ``cogs/quota/render.py``."""

from cogs.quota.cog import QuotaCog

__all__ = ["QuotaCog"]
