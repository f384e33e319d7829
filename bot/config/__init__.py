"""Settings: one typed object from the environment and ``.env``, declared once (``settings.py``); the
declaration machinery (``spec.py``), the value parsers (``parsers.py``) and ``.env.example``
(``env_example.py``); and the one redaction of credentials (``redaction.py``) that every log line, error and
doctor output goes through."""
