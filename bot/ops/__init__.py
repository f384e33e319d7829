"""Running it: the doctor (``doctor.py``, ``doctor_api.py``, ``permissions.py``), ``/healthz`` and
``/metrics`` (``health_server.py``, ``metrics.py``), the container probe (``probe.py``) and the job events
and log format (``job_events.py``)."""
