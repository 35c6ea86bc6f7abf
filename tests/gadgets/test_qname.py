"""QNAME -> policy key gadget (SPEC §5.4, §6) against its native twin, dnspython and the policy module.

Soundness: the gadget has no user hints.  Every wire it allocates is a product, an inverse, or a
bit of a decomposition, fixed by its constraint once the window is fixed; the only free wires are
the helpers ``m`` of ``is_zero(x)`` at ``x = 0``, which appear in ``x * m = t`` alone (forcing
``t = 0`` whatever ``m`` is).  So the witness the solver computes (``check=False``) is the only
candidate up to those helpers: :func:`test_every_wire_is_forced` checks that claim wire by wire, and
an invalid window whose solved witness is unsatisfied is therefore unprovable.
"""

from __future__ import annotations

import random

import dns.exception
import dns.name
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import lc_value, pack_bytes
from zkmb.gadgets.qname import (
    KEY_ELEMENTS,
    KEY_LEN,
    QnameKeyCircuit,
    qname_elements_native,
    qname_key_64_circuit,
    qname_key_constraints,
    qname_key_native,
)
from zkmb.gadgets.registry import GADGET_MODULES, builders
from zkmb.policy.rules import name_key
from zkmb.policy.tree import pack_key
from zkmb.r1cs import UnsatisfiedError, compile, solver

from .tamper import bump

W = 64


def _compile(width: int):
    inst = QnameKeyCircuit(width, checked=True)
    return inst, compile(inst)


@pytest.fixture(scope="module")
def c64():
    return _compile(W)


@pytest.fixture(scope="module")
def c255():
    return _compile(255)


_C64 = None


def circuit64():
    """The W = 64 circuit for the hypothesis tests (compiled once per module)."""
    global _C64
    if _C64 is None:
        _C64 = _compile(W)
    return _C64


def window_of(wire: bytes, width: int, fill: bytes = b"") -> bytes:
    """``wire`` followed by ``fill`` and zeros, cut to ``width`` bytes."""
    return (bytes(wire) + bytes(fill) + bytes(width))[:width]


def assignment(window: bytes) -> dict:
    """The honest inputs: the window and the native outputs (zeros when the native twin rejects)."""
    try:
        elements, _, wire_len = qname_elements_native(window)
    except InvalidInput:
        elements, wire_len = [0] * KEY_ELEMENTS, 0
    return {"window": list(window), "key": elements, "wire_len": wire_len}


def prove(c, window: bytes):
    """A satisfying witness (raises UnsatisfiedError if there is none)."""
    inst, cs = c
    return cs.solve(assignment(window))


def outputs(c, witness) -> tuple[list[int], int, int, list[int]]:
    inst, _ = c
    vals = witness.to_ints()
    out = inst.out
    return (
        [lc_value(vals, e) for e in out.elements],
        lc_value(vals, out.key_len),
        lc_value(vals, out.wire_len),
        [lc_value(vals, t) for t in out.end],
    )


def dnspython_key(window: bytes) -> tuple[bytes, int] | None:
    """Independent reference: dnspython's parse plus the §5.4 rules; None when not provable.

    The key is the text form with a leading dot, lower-cased and byte-reversed (SPEC §6).
    """
    try:
        name, used = dns.name.from_wire(window, 0)
    except dns.exception.DNSException:
        return None
    if name.to_wire() != window[:used]:  # a compression pointer was followed
        return None
    if used > min(len(window), 255):
        return None
    labels = name.labels[:-1]
    if any(b < 0x21 or b > 0x7E or b == 0x2E for lab in labels for b in lab):
        return None
    if not labels:
        return b"", used
    return (b"." + b".".join(labels).lower())[::-1], used


def wire_of(*labels: bytes) -> bytes:
    return b"".join(bytes([len(lab)]) + lab for lab in labels) + b"\0"


VALID = [
    wire_of(b"www", b"evil", b"com"),
    wire_of(b"WWW", b"EviL", b"CoM"),
    b"\0",
    wire_of(b"a"),
    wire_of(b"_dmarc", b"a--b", b"xn--bcher-kva", b"example"),
    wire_of(b"[@AZaz`{~!/"),  # case fold boundaries: '@' '[' '`' '{' stay, A-Z fold
    wire_of(bytes(range(0x21, 0x2E)), bytes(range(0x2F, 0x5F)), bytes(range(0x5F, 0x7F))),
    wire_of(b"x" * 62),  # 64 octets: the longest name in a 64-byte window
    wire_of(b"a" * 29),  # key of 30 bytes
    wire_of(b"a" * 30),  # key of 31 bytes: exactly one element
    wire_of(b"a" * 31),  # key of 32 bytes: spills into element 1
    wire_of(b"b" * 30, b"c" * 30),  # key of 62 bytes
]


# ---------------------------------------------------------------------------------------------- native twin


def test_native_example():
    assert qname_key_native(wire_of(b"www", b"evil", b"com")) == (b"moc.live.www.", 14)
    assert qname_key_native(wire_of(b"WWW", b"Evil", b"COM") + b"\x00\x01\x00\x01") == (b"moc.live.www.", 14)
    assert qname_key_native(b"\0junk") == (b"", 1)
    elements, key_len, wire_len = qname_elements_native(wire_of(b"www", b"evil", b"com"))
    assert (key_len, wire_len) == (13, 14)
    assert elements == pack_key(b"moc.live.www.") == pack_bytes(b"moc.live.www.".ljust(KEY_LEN, b"\0"))
    assert len(elements) == KEY_ELEMENTS == 9


@pytest.mark.parametrize("wire", VALID)
def test_native_matches_dnspython_and_policy(wire):
    key, wire_len = qname_key_native(wire)
    assert dnspython_key(wire) == (key, wire_len)
    assert len(key) == wire_len - 1
    name = dns.name.from_wire(wire, 0)[0]
    if len(name.labels) > 1:  # the policy module rejects the root name as a rule
        text = b".".join(name.labels[:-1]).decode("ascii")
        assert name_key(text) == key
        assert name_key(text + ".") == key


INVALID = [
    # (name, window bytes, scope of the first violated constraint)
    ("pointer", b"\xc0\x0c", "qname/length"),
    ("pointer-after-label", wire_of(b"www")[:-1] + b"\xc0\x0c", "qname/length"),
    ("extended-label-type", b"\x41" + b"a" * 40 + b"\0", "qname/length"),
    ("label-64", b"\x40" + b"a" * 64 + b"\0", "qname/length"),
    ("space", wire_of(b"a b"), "qname/bytes"),
    ("dot", wire_of(b"a.b"), "qname/bytes"),
    ("del", wire_of(b"a\x7fb"), "qname/bytes"),
    ("nul-in-label", wire_of(b"a\x00b"), "qname/label"),
    ("control", wire_of(b"a\x1fb"), "qname/label"),
    ("high-bit", wire_of(b"a\xe9b"), "qname/label"),
    ("high-bit-a", wire_of(b"a\xc1b"), "qname/label"),
    ("no-terminator", b"\x03www" * 16, "qname/end"),
    ("too-long-for-window", wire_of(b"x" * 63), "qname/end"),
    ("label-past-window", b"\x3f" + b"a" * 62, "qname/end"),
]


@pytest.mark.parametrize(("case", "wire", "scope"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_names_are_unprovable(c64, case, wire, scope):
    window = window_of(wire, W)
    with pytest.raises(InvalidInput):
        qname_key_native(window)
    assert dnspython_key(window) is None
    inst, cs = c64
    with pytest.raises(UnsatisfiedError):
        prove(c64, window)
    # the witness the program computes (the only candidate, see the module docstring) is unsatisfied,
    # whatever outputs are claimed, and it fails at the rule that was broken
    for key, wire_len in (([0] * KEY_ELEMENTS, 0), (qname_elements_native(window_of(b"\x01a\0", W))[0], 3)):
        w = cs.solve({"window": list(window), "key": key, "wire_len": wire_len}, check=False)
        msg = cs.which_is_unsatisfied(w)
        assert msg is not None and msg.endswith(f"in scope '{scope}'"), msg


def test_name_longer_than_255_is_unprovable(c255):
    wire = wire_of(b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 62)  # 256 octets
    assert len(wire) == 256
    with pytest.raises(InvalidInput):
        qname_key_native(wire)
    assert dnspython_key(wire) is None
    with pytest.raises(UnsatisfiedError):
        prove(c255, window_of(wire, 255))
    with pytest.raises(UnsatisfiedError):  # a wider window does not help: only 255 bytes are read
        prove(_compile(300), window_of(wire, 300))


# ---------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize("wire", VALID)
def test_values(c64, c255, wire):
    c, width = (c64, W) if len(wire) <= W else (c255, 255)
    window = window_of(wire, width, fill=b"\x00\x01\x00\x01\xc0\x0c\xff")
    w = prove(c, window)
    elements, key_len, wire_len, end = outputs(c, w)
    key, n = qname_key_native(window)
    assert elements == pack_key(key)
    assert (key_len, wire_len) == (len(key), n)
    assert end == [int(j == n - 1) for j in range(width)]


def labels_for_key_len(key_len: int, rng: random.Random) -> list[bytes]:
    """Random labels whose key has ``key_len`` bytes (each label adds its size + 1)."""
    labels, left = [], key_len
    while left:
        size = rng.randint(1, min(63, left - 1))
        if left - size - 1 == 1:  # a remainder of 1 cannot be a label
            size += 1 if size < 63 else -1
        labels.append(bytes(rng.choice(b"abcXYZ019-_") for _ in range(size)))
        left -= size + 1
    return labels


@pytest.mark.parametrize("key_len", [0, 2, 30, 31, 32, 61, 62, 63, 92, 93, 94, 247, 248, 249, 253, 254])
def test_values_255(c255, key_len):
    """Keys ending around every element boundary, up to the 255-octet name, in the W = 255 circuit."""
    wire = wire_of(*labels_for_key_len(key_len, random.Random(key_len)))
    assert len(wire) == key_len + 1
    window = window_of(wire, 255, fill=b"\x00\x1c\x00\x01")
    elements, kl, wl, _ = outputs(c255, prove(c255, window))
    key, n = qname_key_native(window)
    assert dnspython_key(window) == (key, n)
    assert (elements, kl, wl) == (pack_key(key), key_len, key_len + 1)


def test_window_wider_than_255():
    c = _compile(300)
    wire = wire_of(b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61)  # 255 octets
    window = window_of(wire, 300, fill=b"\xff" * 45)
    elements, kl, wl, _ = outputs(c, prove(c, window))
    assert (elements, kl, wl) == (pack_key(qname_key_native(window)[0]), 254, 255)


def test_wrong_outputs_are_unsatisfied(c64):
    inst, cs = c64
    window = window_of(wire_of(b"WWW", b"evil", b"com"), W)
    good = assignment(window)
    prove(c64, window)
    lower = assignment(window_of(wire_of(b"www", b"evil", b"com"), W))
    assert lower["key"] == good["key"]  # case folded
    for k in range(KEY_ELEMENTS):
        bad = dict(good, key=list(good["key"]))
        bad["key"][k] += 1
        with pytest.raises(UnsatisfiedError):
            cs.solve(bad)
    for wl in (13, 15, 0):
        with pytest.raises(UnsatisfiedError):
            cs.solve(dict(good, wire_len=wl))
    # the key of the unfolded name is not accepted either
    unfolded = pack_bytes(b"MOC.live.WWW.".ljust(KEY_LEN, b"\0"))
    with pytest.raises(UnsatisfiedError):
        cs.solve(dict(good, key=unfolded))


# ---------------------------------------------------------------------------------------------- soundness


def _free_inverse_wires(cs, w) -> set[int]:
    """Outputs of the inverse opcode that are 0 (the is_zero helpers at a zero argument)."""
    instr = cs.program.instr
    outs = instr[instr[:, 0] == solver.OP_INV][:, 2].tolist()
    return {o for o in outs if w.value(o) == 0}


def test_every_wire_is_forced(c64):
    """Changing any single non-input wire of an honest witness breaks it, except the free helpers."""
    inst, cs = c64
    window = window_of(wire_of(b"Ab", b"[z@Z", b"x"), W, fill=b"\x05\x00")
    w = prove(c64, window)
    first_internal = 1 + cs.n_public + cs.n_secret_inputs
    free = _free_inverse_wires(cs, w)
    survivors = [i for i in range(first_internal, cs.n_wires) if cs.is_satisfied(bump(w, i))]
    assert survivors and set(survivors) <= free
    # the input bytes themselves: any change is either rejected or changes the (public) outputs
    for j in range(20):
        assert not cs.is_satisfied(bump(w, 1 + cs.n_public + j))


def test_tampered_fold_and_walk(c64):
    """Named tampering: the case-fold bit of 'A', the key byte of '.', a terminator flag."""
    inst, cs = c64
    window = window_of(wire_of(b"A", b"b"), W)
    w = prove(c64, window)
    vals = w.to_ints()
    end = inst.out.end
    t_wire = next(iter(end[4].t))  # t_4 = 1 (terminator at offset 4)
    assert vals[t_wire] == 1
    assert not cs.is_satisfied(w.replace(t_wire, 0))
    t_other = next(iter(end[2].t))
    assert not cs.is_satisfied(w.replace(t_other, 1))


# ---------------------------------------------------------------------------------------------- counts


def test_constraint_counts(c64, c255):
    assert qname_key_constraints(64) == 1346
    assert qname_key_constraints(255) == qname_key_constraints(448) == 6240
    assert c64[1].n_constraints == 1346 + 64 * 9 + 10  # + byte range checks + output equalities
    assert c255[1].n_constraints == 6240 + 255 * 9 + 10
    for width in (*range(1, 12), 30, 31, 32, 33, 62, 63, 94, 95, 254, 256):
        cs = compile(QnameKeyCircuit(width))
        assert cs.n_constraints == qname_key_constraints(width) + 10, width


def test_registry():
    assert "zkmb.gadgets.qname" in GADGET_MODULES
    assert builders()["qname_key_64"] is qname_key_64_circuit
    cs = qname_key_64_circuit()
    assert cs.n_constraints == 1356
    # the registry circuit takes bits: the same name proves there too
    window = window_of(wire_of(b"WWW", b"evil", b"com"), W)
    bits = [(byte >> i) & 1 for byte in window for i in range(8)]
    a = assignment(window)
    assert cs.is_satisfied(cs.solve(dict(a, window=bits)))


def test_rejects_bad_shapes():
    from zkmb.r1cs import Circuit, Secret

    class Empty(Circuit):
        x = Secret()

        def define(self, api):
            from zkmb.gadgets.qname import qname_key

            qname_key(api, [])

    with pytest.raises(InvalidInput):
        compile(Empty)
    with pytest.raises(InvalidInput):
        qname_key_constraints(0)


# ---------------------------------------------------------------------------------------------- fuzzing

_ALLOWED = bytes(b for b in range(0x21, 0x7F) if b != 0x2E)
_byte = st.one_of(st.sampled_from(_ALLOWED), st.integers(0, 255))
_label = st.binary(min_size=0, max_size=8) | st.lists(
    st.sampled_from(_ALLOWED + b"ABCXYZ"), min_size=1, max_size=70
).map(bytes)


@st.composite
def label_sequences(draw):
    """Names from label lists: mostly valid, sometimes a bad byte, an empty/long label, no terminator."""
    labels = draw(st.lists(_label, min_size=0, max_size=6))
    wire = b""
    for lab in labels:
        if len(lab) > 255:
            lab = lab[:255]
        if draw(st.integers(0, 9)) == 0 and lab:
            lab = lab[:-1] + bytes([draw(_byte)])
        wire += bytes([len(lab)]) + lab
    if draw(st.integers(0, 9)) > 0:
        wire += b"\0"
    return wire


@st.composite
def mutated(draw):
    """A valid name with one change: a byte replaced, a pointer or terminator inserted, cut short."""
    labels = draw(
        st.lists(st.lists(st.sampled_from(_ALLOWED), min_size=1, max_size=20).map(bytes), max_size=4)
    )
    wire = bytearray(wire_of(*labels))
    pos = draw(st.integers(0, len(wire) - 1))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        wire[pos] = draw(st.integers(0, 255))
    elif kind == 1:
        wire[pos:pos] = bytes([0xC0 | draw(st.integers(0, 63)), draw(st.integers(0, 255))])
    elif kind == 2:
        wire[pos:pos] = b"\0"
    else:
        del wire[pos:]
    return bytes(wire)


def _check_against_dnspython(wire: bytes, fill: bytes) -> None:
    window = window_of(wire, W, fill=fill)
    ref = dnspython_key(window)
    try:
        native = qname_key_native(window)
    except InvalidInput:
        native = None
    assert native == ref
    c = circuit64()
    if ref is None:
        with pytest.raises(UnsatisfiedError):
            prove(c, window)
        return
    elements, key_len, wire_len, _ = outputs(c, prove(c, window))
    assert elements == pack_key(ref[0])
    assert (key_len, wire_len) == (len(ref[0]), ref[1])


_fuzz = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fuzz
@given(label_sequences(), st.binary(max_size=8))
def test_fuzz_label_sequences(wire, fill):
    _check_against_dnspython(wire, fill)


@_fuzz
@given(st.binary(min_size=0, max_size=W), st.binary(max_size=8))
def test_fuzz_random_bytes(wire, fill):
    _check_against_dnspython(wire, fill)


@_fuzz
@given(mutated(), st.binary(max_size=8))
def test_fuzz_mutations(wire, fill):
    _check_against_dnspython(wire, fill)
