"""The seen-ClientHello-random sets (SPEC §2): per process, and shared by a multi-queue bridge's children."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from zkmb.middlebox.randoms import RandomSet, SharedRandomSet


def _child_adds(shared: SharedRandomSet, randoms: list[bytes], out) -> None:
    out.put([shared.check_and_add(r) for r in randoms])


@pytest.mark.parametrize("cls", [RandomSet, SharedRandomSet])
def test_check_and_add(cls):
    s = cls()
    a, b = os.urandom(32), os.urandom(32)
    assert s.check_and_add(a) and a in s and b not in s
    assert not s.check_and_add(a)
    assert s.check_and_add(b) and not s.check_and_add(b)


def test_shared_across_spawned_processes():
    """A random added in one spawned process is seen by another and by the parent."""
    ctx = multiprocessing.get_context("spawn")
    shared = SharedRandomSet(ctx, buckets=64, ways=4)
    mine = os.urandom(32)
    assert shared.check_and_add(mine)
    theirs = [os.urandom(32) for _ in range(20)]
    out = ctx.Queue()
    p = ctx.Process(target=_child_adds, args=(shared, [*theirs, mine], out))
    p.start()
    first = out.get(timeout=60)
    p.join(30)
    assert first == [True] * 20 + [False]  # the parent's random was already there
    p = ctx.Process(target=_child_adds, args=(shared, theirs[:3], out))
    p.start()
    assert out.get(timeout=60) == [False] * 3  # the first child's randoms are seen by the second
    p.join(30)
    assert all(r in shared for r in theirs)


def test_shared_bounded_oldest_forgotten():
    shared = SharedRandomSet(buckets=1, ways=4)
    rs = [os.urandom(32) for _ in range(6)]
    for r in rs:
        assert shared.check_and_add(r)
    assert [r in shared for r in rs] == [False, False, True, True, True, True]
    assert shared.capacity == 4


def test_shared_refuses_wrong_length():
    with pytest.raises(ValueError):
        SharedRandomSet(buckets=2, ways=2).check_and_add(b"short")
    assert b"short" not in SharedRandomSet(buckets=2, ways=2)
