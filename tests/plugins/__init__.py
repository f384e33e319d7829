"""Fixtures as pytest plugins, registered once in ``tests/conftest.py``: a test asks for a fixture by naming it
as a parameter and never imports it."""
