"""End to end: the progress message shows the newest partial frame, however close behind its predecessor.

The real bot process against the fake Discord and the fake Images API (``tests/conftest.py``).
"""

from __future__ import annotations

from tests.conftest import Rig
from tests.helpers.e2e import files_of, has_result, poll, results_of


async def test_the_newest_frame_is_shown_before_a_slow_result(rig: Rig) -> None:
    # Two partial frames 30 ms apart, then the result 3 s later (the real API takes 10-120 s at high
    # quality; scaled down, same shape). With one edit per second, frame 2 must follow frame 1 within
    # about a second, not wait for (and be replaced by) the result.
    rig.images.event_delays = (0.3, 0.03, 3.0)
    await rig.start_bot(PREVIEW_MIN_INTERVAL="1.0")
    fd = rig.discord
    h = await fd.inject_interaction(fd.slash("imagine", {"prompt": "a lighthouse in a storm"}))

    def frame_shown(n: int) -> bool:
        return any(f"frame {n}/2" in (m.get("content") or "") for m in h.original_history)

    await poll(lambda: frame_shown(2), timeout=15)
    assert not results_of(h.original), "the result came before frame 2 was shown"
    await h.wait_for(has_result, timeout=20)

    history = h.original_history
    shown = [m for m in history if any(a["filename"].startswith("preview") for a in files_of(m))]
    frames = [next(n for n in (1, 2) if f"frame {n}/2" in m["content"]) for m in shown]
    assert frames == [1, 2]  # each frame once, in order
    final_at = next(i for i, m in enumerate(history) if results_of(m))
    assert history.index(shown[-1]) < final_at
