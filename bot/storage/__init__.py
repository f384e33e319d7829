"""The database: SQLite embedded by default (``sqlite.py``), PostgreSQL to scale out (``postgres.py``), one
way to open either (``connect.py``), numbered migrations (``migrations/``, applied by ``db.py``), the
``Database`` that repositories build on (``database.py``: backend, clock, instance lease, key-value, ping),
instance leases (``leases.py``) and the copy from SQLite to PostgreSQL (``copy.py``). Nothing here knows the
quota domain (``bot/quota/`` builds on it)."""
