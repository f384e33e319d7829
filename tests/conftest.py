"""The fixtures every test can ask for, registered as plugins (``tests/plugins/``); ``tests/README.md`` says
what each one gives and how to wait for the bot.

* ``tests.plugins.rig``: ``rig``, the fake Discord, the fake Images API and the real bot as a process.
* ``tests.plugins.fakes``: ``fake`` (the Images API alone), ``fd`` (Discord alone), ``session`` (aiohttp).
* ``tests.plugins.stores``: ``dialect`` (SQLite and PostgreSQL), ``database``, ``open_backend``, ``store``,
  ``clock``.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = ["tests.plugins.rig", "tests.plugins.fakes", "tests.plugins.stores"]


def pytest_collection_finish(session: pytest.Session) -> None:
    """The real LiteLLM proxy's venv is installed (once, then cached) before the first test, so the install is
    bounded by its own timeout rather than a test's."""
    if any("test_litellm_proxy" in item.nodeid for item in session.items):
        from tests.helpers.litellm import preinstall

        preinstall()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item (``item.rep_call``): fixtures read it at teardown, e.g. to
    save a browser screenshot when the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
