"""A job's life: its spec and options (``options.py``), the service that opens and runs it (``service.py``),
the one owner of its money (``job.py``: reserved on opening, settled once, refunded otherwise), the fair
queue in one process (``scheduler.py``) and across processes (``cluster.py``), and the progress pacer and
publisher (``progress.py``), built per job as its observer (``previews.py``). No Discord."""
