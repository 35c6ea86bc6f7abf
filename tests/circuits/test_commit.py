"""Commitment layouts (docs/protocol.md "Statements") and the statement registry."""

from __future__ import annotations

import pytest
from zkmb.circuits.commit import (
    AES128GCM,
    CHACHA20,
    comm_k_inputs,
    comm_k_native,
    comm_pad_inputs,
    comm_pad_native,
    fresh_blinder,
    suite_by_code,
    suite_by_name,
)

from zkmb.algebra.params import R
from zkmb.errors import InvalidInput
from zkmb.gadgets.poseidon import poseidon_native
from zkmb.gadgets.registry import builders
from zkmb.gadgets.tags import TAG_KEY_COMMITMENT, TAG_PAD_COMMITMENT


def test_layouts():
    key, iv = bytes(range(32)), bytes(range(100, 112))
    assert comm_k_inputs(CHACHA20, key, iv, 7) == [
        TAG_KEY_COMMITMENT, 0x1303, int.from_bytes(key[:31], "big"), key[31], int.from_bytes(iv, "big"), 7,
    ]  # fmt: skip
    assert comm_k_inputs(AES128GCM, key[:16], iv, 7) == [
        TAG_KEY_COMMITMENT, 0x1301, int.from_bytes(key[:16], "big"), int.from_bytes(iv, "big"), 7,
    ]  # fmt: skip
    pad = bytes(range(64))
    assert comm_pad_inputs(pad, 9) == [
        int.from_bytes(pad[:31], "big"), int.from_bytes(pad[31:62], "big"),
        int.from_bytes(pad[62:], "big"), 9,
    ]  # fmt: skip
    # the pad tag is the capacity element (issue #16), not an input
    assert comm_pad_native(pad, 9) == poseidon_native(comm_pad_inputs(pad, 9), init=TAG_PAD_COMMITMENT)
    assert comm_pad_native(pad, 9) != poseidon_native([TAG_PAD_COMMITMENT, *comm_pad_inputs(pad, 9)])
    assert comm_k_native(CHACHA20, key, iv, 7) != comm_k_native(CHACHA20, key, iv, 8)


def test_rejects_bad_inputs():
    with pytest.raises(InvalidInput):
        comm_k_inputs(CHACHA20, bytes(16), bytes(12), 0)
    with pytest.raises(InvalidInput):
        comm_k_inputs(AES128GCM, bytes(16), bytes(11), 0)
    with pytest.raises(InvalidInput):
        comm_pad_inputs(bytes(63), 0)
    for b in (-1, R):
        with pytest.raises(InvalidInput):
            comm_pad_inputs(bytes(64), b)
    with pytest.raises(InvalidInput):
        suite_by_code(0x1302)
    with pytest.raises(InvalidInput):
        suite_by_name("aes256gcm")


def test_fresh_blinders_differ():
    bs = {fresh_blinder() for _ in range(8)}
    assert len(bs) == 8 and all(0 <= b < R for b in bs)


def test_registered_statements():
    reg = builders()
    for name in ("co_chacha20", "co_aes128gcm", "pad_block", "pad_block_aes128gcm"):
        assert name in reg
    assert reg["pad_block"]().n_constraints == 22_437  # 22,458 before issue #16 (comm_pad tag now capacity)


def test_copied_suite_is_the_same_object():
    """A suite that crossed a process boundary (pickled) or was copied is still the module's object,
    so ``suite is CHACHA20`` checks hold (issue 15: every PAD failed with 'no pad for suite chacha20'
    on a connection whose CO came back from the background process)."""
    import copy
    import pickle

    from zkmb.circuits.commit import AES128GCM, CHACHA20
    from zkmb.circuits.witness import ClientKeys, pad_block_native

    for s in (CHACHA20, AES128GCM):
        assert pickle.loads(pickle.dumps(s)) is s and copy.deepcopy(s) is s and copy.copy(s) is s
    keys = ClientKeys(CHACHA20, bytes(32), bytes(12), 5, 7)
    again = pickle.loads(pickle.dumps(keys))
    assert again.suite is CHACHA20
    assert pad_block_native(again.suite, again.key, again.iv, 3, 1) == pad_block_native(
        CHACHA20, keys.key, keys.iv, 3, 1
    )
