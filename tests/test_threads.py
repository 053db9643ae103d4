"""The shared thread pool behind the large validation passes."""

import threading

import pytest

from calkit._threads import share_work, worker_count


def test_share_work_returns_results_in_part_order_and_uses_several_threads():
    seen = set()

    def work(a, b):
        seen.add(threading.get_ident())
        return a * b

    parts = [(i, i + 1) for i in range(40)]
    assert share_work(work, parts) == [a * b for a, b in parts]
    assert 1 <= len(seen) <= worker_count()


def test_share_work_raises_what_a_part_raises():
    def work(i):
        if i == 7:
            raise ValueError("part 7")
        return i

    with pytest.raises(ValueError, match="part 7"):
        share_work(work, [(i,) for i in range(16)])
