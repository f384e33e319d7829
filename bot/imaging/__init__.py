"""Pillow work, always off the event loop: previews and fitting results (``work.py``), checking the API's
final images (``verify.py``), members' input images and masks (``inputs.py``, ``input_cache.py``)."""
