"""The database: SQLite embedded by default (``sqlite.py``), PostgreSQL to scale out (``postgres.py``), one
way to open either (``connect.py``), numbered migrations (``migrations/``, applied by ``db.py``), instance
leases (``leases.py``) and the copy from SQLite to PostgreSQL (``copy.py``)."""
