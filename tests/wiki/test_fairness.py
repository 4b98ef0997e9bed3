"""Views of a wiki whose views cost much CPU run at a lower priority, then it is put back."""

import os
import time

import pytest

from app.wiki.otterwiki.fairness import HEAVY_NICE
from app.wiki.otterwiki.fairness import HEAVY_VIEW
from app.wiki.otterwiki.fairness import Fairness
from app.wiki.otterwiki.fairness import can_restore_priority

pytestmark = pytest.mark.skipif(
    not can_restore_priority(), reason="this process may not raise its priority back"
)


def priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_a_heavy_wikis_view_runs_lower_and_is_put_back():
    fairness = Fairness()
    fairness.averages["heavy"] = 10 * HEAVY_VIEW
    fairness.begin("heavy")
    during = priority()
    fairness.end("heavy")
    # The kernel caps niceness at 19 (a suite run under `nice` starts close to it).
    assert (during, priority()) == (min(fairness.base + HEAVY_NICE, 19), fairness.base)


def test_a_light_wikis_view_keeps_its_priority():
    fairness = Fairness()
    fairness.begin("light")
    assert priority() == fairness.base
    fairness.end("light")


def test_a_costly_view_makes_its_wiki_heavy_and_cheap_ones_light_again():
    fairness = Fairness()
    fairness.begin("wiki")
    fairness.started = time.process_time() - 5 * HEAVY_VIEW  # as if the view took that long
    fairness.end("wiki")
    heavy = fairness.averages["wiki"] > HEAVY_VIEW
    for _ in range(20):
        fairness.begin("wiki")
        fairness.end("wiki")
    assert heavy and fairness.averages["wiki"] < HEAVY_VIEW
