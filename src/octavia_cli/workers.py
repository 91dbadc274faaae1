"""Work spread over the machine's cores: how many there are, and a map that keeps order.

Threads, not processes: the work handed out here (an engine program per line, Rubber Band,
CTranslate2) runs outside the GIL.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def cores() -> int:
    """The cores this process may run on (its affinity, as a container or taskset sets)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def in_order(
    function: Callable[[Item], Result], items: Iterable[Item], workers: int
) -> Iterator[Result]:
    """``function`` of each item, in the items' order, up to ``workers`` at a time (in this
    thread when ``workers`` is 1, so Ctrl-C stops it at once). ``items`` is drawn from only
    as workers come free, so a generator of large items (windows of audio) holds at most
    ``workers`` of them. If the consumer stops early (an error, Ctrl-C), the items not yet
    begun are not begun."""
    if workers <= 1:
        yield from map(function, items)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="octavia")
    pending: deque[Future[Result]] = deque()
    try:
        for item in items:
            if len(pending) >= workers:
                yield pending.popleft().result()
            pending.append(pool.submit(function, item))
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)
