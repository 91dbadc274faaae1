"""workers.in_order: results in the items' order, and nothing begun after a failure."""

from __future__ import annotations

import threading
import time

import pytest

from octavia_cli.workers import cores, in_order


def test_results_keep_their_order_and_use_several_threads() -> None:
    names = set()

    def slow_first(item: int) -> int:
        names.add(threading.current_thread().name)
        time.sleep(0.2 if item == 0 else 0.01)
        return item * 10

    assert list(in_order(slow_first, range(6), 2)) == [0, 10, 20, 30, 40, 50]
    assert len(names) == 2
    assert list(in_order(lambda x: x + 1, [1, 2], 1)) == [2, 3]
    assert cores() >= 1


def test_a_failure_stops_the_items_not_begun() -> None:
    begun = []

    def work(item: int) -> int:
        begun.append(item)
        if item == 0:
            raise ValueError("first")
        time.sleep(0.05)
        return item

    with pytest.raises(ValueError, match="first"):
        list(in_order(work, range(40), 2))
    time.sleep(0.2)
    assert len(begun) < 40
