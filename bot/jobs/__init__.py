"""A job's life: its spec and options (``options.py``), the service that runs it and owns its money
(``service.py``), the fair queue in one process (``scheduler.py``) and across processes (``cluster.py``),
and the progress pacer and publisher (``progress.py``). No Discord."""
