"""ClientHello randoms already seen (SPEC §2): a random seen on another connection is refused.

:class:`RandomSet` serves one process (relay mode, a single bridge queue).  :class:`SharedRandomSet`
is one set for every verifier process of a multi-queue bridge: the kernel spreads connections over
the queues by address pair, so a replayed ClientHello from another address lands on another queue,
and per-queue sets would each see it for the first time.  Both are bounded (the oldest entries are
forgotten first) and offer one atomic :meth:`check_and_add`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from collections import OrderedDict

import numpy as np

__all__ = ["RandomSet", "SharedRandomSet"]

RANDOM_LEN = 32


class RandomSet:
    """ClientHello randoms already seen in this process, bounded: the oldest are forgotten first."""

    def __init__(self, limit: int = 1 << 20):
        self._d: OrderedDict[bytes, None] = OrderedDict()
        self.limit = limit

    def __contains__(self, r: object) -> bool:
        return r in self._d

    def add(self, r: bytes) -> None:
        self._d[bytes(r)] = None
        while len(self._d) > self.limit:
            self._d.popitem(last=False)

    def check_and_add(self, r: bytes) -> bool:
        """Add ``r``; True if it was new, False if it had been seen."""
        if r in self._d:
            return False
        self.add(r)
        return True


class SharedRandomSet:
    """A bounded set of 32-byte randoms in shared memory, one for a parent and its spawned children.

    Layout: a set-associative table of ``buckets`` x ``ways`` slots (random, insertion stamp); a
    random's bucket is a keyed BLAKE2b of it (the key is secret to the middlebox, so a client cannot
    aim randoms at one bucket to evict another's entry).  A full bucket forgets its oldest entry.
    :meth:`check_and_add` runs under one inter-process lock.  Pass the object to the children as a
    ``Process`` argument (the shared buffer and the lock travel only at spawn time)."""

    def __init__(self, ctx=None, *, buckets: int = 1 << 15, ways: int = 16):
        import multiprocessing

        ctx = ctx or multiprocessing.get_context("spawn")
        if buckets < 1 or ways < 1:
            raise ValueError("buckets and ways must be positive")
        self.buckets, self.ways = buckets, ways
        self._key = os.urandom(16)
        self._raw = ctx.RawArray(ctypes.c_uint8, 8 + buckets * ways * (RANDOM_LEN + 8))
        self._lock = ctx.Lock()
        self._views()

    def _views(self) -> None:
        buf = np.frombuffer(self._raw, dtype=np.uint8)
        n = self.buckets * self.ways
        self._counter = buf[:8].view(np.uint64)
        self._stamps = buf[8 : 8 + 8 * n].view(np.uint64).reshape(self.buckets, self.ways)
        self._slots = buf[8 + 8 * n :].reshape(self.buckets, self.ways, RANDOM_LEN)

    def __getstate__(self):
        return {"raw": self._raw, "lock": self._lock, "key": self._key, "b": self.buckets, "w": self.ways}

    def __setstate__(self, state) -> None:
        self._raw, self._lock, self._key = state["raw"], state["lock"], state["key"]
        self.buckets, self.ways = state["b"], state["w"]
        self._views()

    @property
    def capacity(self) -> int:
        return self.buckets * self.ways

    def _bucket(self, r: bytes) -> int:
        h = hashlib.blake2b(r, digest_size=8, key=self._key).digest()
        return int.from_bytes(h, "little") % self.buckets

    def _find(self, b: int, row: np.ndarray) -> bool:
        used = self._stamps[b] != 0
        return bool((used & (self._slots[b] == row).all(axis=1)).any())

    def __contains__(self, r: object) -> bool:
        if not isinstance(r, bytes | bytearray) or len(r) != RANDOM_LEN:
            return False
        row = np.frombuffer(bytes(r), dtype=np.uint8)
        with self._lock:
            return self._find(self._bucket(bytes(r)), row)

    def add(self, r: bytes) -> None:
        self.check_and_add(r)

    def check_and_add(self, r: bytes) -> bool:
        """Add ``r`` atomically across processes; True if it was new, False if it had been seen."""
        r = bytes(r)
        if len(r) != RANDOM_LEN:
            raise ValueError("a ClientHello random is 32 bytes")
        row = np.frombuffer(r, dtype=np.uint8)
        b = self._bucket(r)
        with self._lock:
            if self._find(b, row):
                return False
            victim = int(np.argmin(self._stamps[b]))  # an empty slot (stamp 0) or the oldest
            self._counter[0] += np.uint64(1)
            self._slots[b, victim] = row
            self._stamps[b, victim] = self._counter[0]
            return True
