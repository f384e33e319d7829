"""Settings: one typed object from the environment and ``.env``, declared once (``settings.py``); the
declaration machinery (``spec.py``) and the value parsers (``parsers.py``) it is built from."""
