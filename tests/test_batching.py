"""GroupCommit: callers arriving during a write share the next one; each returns once its item is written."""

from __future__ import annotations

import threading

import pytest

from app.batching import GroupCommit


def test_a_lone_caller_writes_its_item_at_once():
    written: list[list[int]] = []
    GroupCommit(written.append).submit(1)
    assert written == [[1]]


def test_callers_arriving_during_a_write_share_the_next_write():
    release, writing = threading.Event(), threading.Event()
    written: list[list[int]] = []

    def write(items: list[int]) -> None:
        if not written:  # hold the first write until the others have queued behind it
            writing.set()
            assert release.wait(5)
        written.append(items)

    group = GroupCommit(write)
    first = threading.Thread(target=group.submit, args=(0,))
    first.start()
    assert writing.wait(5)
    others = [threading.Thread(target=group.submit, args=(i,)) for i in range(1, 5)]
    for t in others:
        t.start()
    while len(group._queued) < 4:  # all four queued behind the write in flight
        threading.Event().wait(0.001)
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert written[0] == [0]
    assert sorted(written[1]) == [1, 2, 3, 4] and len(written) == 2


def test_a_failed_write_fails_every_item_it_carried():
    def write(_items: list[int]) -> None:
        raise OSError("down")

    with pytest.raises(OSError, match="down"):
        GroupCommit(write).submit(1)


def test_a_caller_returns_only_after_its_own_item_is_written():
    written: list[int] = []
    seen_at_return: list[bool] = []
    group: GroupCommit[int] = GroupCommit(written.extend)

    def submit(i: int) -> None:
        group.submit(i)
        seen_at_return.append(i in written)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(written) == list(range(20))
    assert seen_at_return == [True] * 20
