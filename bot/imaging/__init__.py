"""Pillow work, always off the event loop: previews and fitting results (``work.py``), checking the API's
final images (``verify.py``), members' input images and masks (``inputs.py``, ``input_cache.py``).

Importing this package sets Pillow's decompression-bomb limit explicitly in the importing process (the bot,
and each preview worker process, which imports it to run its work): an image over the limit is refused at
its header, before a pixel is decoded, whatever Pillow's own default is. ``set_decode_limit`` raises it to
the configured ``MAX_INPUT_PIXELS`` at start.
"""

from __future__ import annotations

import warnings

from PIL import Image

# The largest image any known model returns (3840x2160) with a quarter to spare, and the default
# MAX_INPUT_PIXELS: the larger of the two.
DEFAULT_DECODE_PIXELS = 40_000_000

# Pillow warns (and only errors at twice its limit) for decompression bombs; a warning is useless in a
# server, so make it an exception process-wide. Set once at import, never toggled per call: the warnings
# filters are global and not thread-safe to change while Pillow runs in worker threads.
warnings.simplefilter("error", Image.DecompressionBombWarning)
Image.MAX_IMAGE_PIXELS = DEFAULT_DECODE_PIXELS


def set_decode_limit(pixels: int) -> None:
    """Pillow's limit in this process: at least ``pixels`` (the configured input limit)."""
    Image.MAX_IMAGE_PIXELS = max(DEFAULT_DECODE_PIXELS, int(pixels))
