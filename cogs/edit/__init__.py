"""Editing images (``cogs/edit/cog.py``): the reply listener, ``/edit``, the "Edit image" menu and modal."""

from cogs.edit.cog import EditCog

__all__ = ["EditCog"]
