"""Poseidon: derived constants, Python twin, numba kernel and gadget against circomlibjs, every width.

circomlibjs (``.tools/node_modules`` or ``$ZKMB_NODE_TOOLS``) is run once per module through
``circomlibjs_poseidon.mjs`` (offline, with a timeout) for the test vectors and its constant tables;
without node the tests that need it skip (fail under CI).  The pinned constant digests are checked
without node.  Optional: circom2 compiles circomlib's ``Poseidon(n)`` for every n to compare counts.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require
from zkmb.algebra.fast.fields import fr_from_ints, fr_to_ints
from zkmb.algebra.params import R
from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import lc_value
from zkmb.gadgets.poseidon import (
    MAX_INPUTS,
    poseidon,
    poseidon2_circuit,
    poseidon_constraints,
    poseidon_many,
    poseidon_many_mont,
    poseidon_native,
    poseidon_permutation,
    poseidon_permutation_native,
)
from zkmb.gadgets.poseidon_constants import (
    N_ROUNDS_P,
    PINNED_DIGESTS,
    constants_digest,
    grain_elements,
    params,
)
from zkmb.gadgets.registry import GADGET_MODULES
from zkmb.gadgets.tags import TAG_KEY_HASH, TAG_LEAF, TAG_NODE_2, TAG_NODE_4, TAG_PAD_COMMITMENT
from zkmb.r1cs import Circuit, Public, Secret, UnsatisfiedError, compile, read_r1cs

from .tamper import assert_fails_in, bump, product_wires, solve_pinned, violated_rows

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("ZKMB_NODE_TOOLS", REPO / ".tools" / "node_modules"))
SCRIPT = Path(__file__).with_name("circomlibjs_poseidon.mjs")
WIDTHS = range(1, MAX_INPUTS + 1)  # number of inputs
# constraints of poseidon(n inputs, all variable); circom --O2 of circomlib's Poseidon(n) gives the same
COUNTS = {1: 213, 2: 240, 3: 261, 4: 297, 5: 321, 6: 354, 7: 381, 8: 402}
COUNTS.update({9: 417, 10: 459, 11: 465, 12: 504, 13: 543, 14: 537, 15: 573, 16: 609})


def _vectors() -> dict[int, list[list[int]]]:
    """Per width: random inputs, all 0, all r - 1, small values, mixed edges."""
    rng = random.Random(2024)
    out = {}
    for n in WIDTHS:
        vs = [[rng.randrange(R) for _ in range(n)] for _ in range(3)]
        vs += [[0] * n, [R - 1] * n, list(range(1, n + 1)), [(R - 1) if i % 2 else 0 for i in range(n)]]
        out[n] = vs
    return out


VECTORS = _vectors()
TAGGED = [
    [tag, *x]
    for tag in (TAG_KEY_HASH, TAG_LEAF, TAG_NODE_4, TAG_NODE_2, TAG_PAD_COMMITMENT, 1, R - 1)
    for x in ([1, 2], [3, 4, 5, 6], list(range(7, 16)), [0, R - 1, 2, 3])
]
"""Capacity-tagged hashes (``[tag, inputs...]``): every policy and pad tag, the widths they are used at
(2: leaf and binary node, 4: 4-ary node and comm_pad, 9: key hash), and edge tags."""
PERM_STATES = {t: [[random.Random(t).randrange(R) for _ in range(t)], [R - 1] * t] for t in (2, 3, 4, 5, 17)}


def _node_available() -> bool:
    return bool(shutil.which("node")) and (TOOLS / "circomlibjs" / "main.js").exists()


@pytest.fixture(scope="module")
def circomlibjs() -> dict:
    """circomlibjs's answers for VECTORS (flattened in width order), PERM_STATES and its constants."""
    require(_node_available(), f"node and circomlibjs are needed (looked in {TOOLS})")
    hash_in = [v for n in WIDTHS for v in VECTORS[n]]
    perm_in = [s for t in PERM_STATES for s in PERM_STATES[t]]
    req = {
        "hash": [[str(x) for x in v] for v in hash_in],
        "perm": [[str(x) for x in s] for s in perm_in],
        "tagged": [[str(x) for x in v] for v in TAGGED],
        "constants": True,
    }
    res = subprocess.run(
        ["node", str(SCRIPT), str(TOOLS)],
        input=json.dumps(req),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=SCRIPT.parent,
    )
    assert res.returncode == 0, res.stderr
    ans = json.loads(res.stdout)
    hashes: dict[int, dict[str, list[int]]] = {}
    k = 0
    for n in WIDTHS:
        m = len(VECTORS[n])
        hashes[n] = {impl: [int(x) for x in ans[impl][k : k + m]] for impl in ("reference", "opt", "wasm")}
        k += m
    perms: dict[int, list[list[int]]] = {}
    k = 0
    for t in PERM_STATES:
        m = len(PERM_STATES[t])
        perms[t] = [[int(x) for x in o] for o in ans["perm"][k : k + m]]
        k += m
    consts = {
        t: ([int(x) for x in ans["C"][t - 2]], [[int(x) for x in row] for row in ans["M"][t - 2]])
        for t in range(2, MAX_INPUTS + 2)
    }
    tagged = [[int(x) for x in row] for row in ans["tagged"]]
    return {"hash": hashes, "perm": perms, "constants": consts, "tagged": tagged}


# --------------------------------------------------------------------------- constants


def test_derived_constants_match_pinned_digests():
    assert sorted(PINNED_DIGESTS) == list(range(2, MAX_INPUTS + 2))
    for t in range(2, MAX_INPUTS + 2):
        flat, mds = grain_elements(t, 8, N_ROUNDS_P[t - 2])
        assert len(flat) == (8 + N_ROUNDS_P[t - 2]) * t and len(mds) == t
        assert constants_digest(flat, mds) == PINNED_DIGESTS[t], t


def test_derived_constants_match_circomlibjs(circomlibjs):
    for t, (c, m) in circomlibjs["constants"].items():
        p = params(t)
        assert [x for row in p.round_constants for x in row] == c
        assert [list(row) for row in p.mds] == m
        assert constants_digest(c, m) == PINNED_DIGESTS[t]


def test_known_vector():
    # the well-known circomlib value of Poseidon([1, 2])
    h = 7853200120776062878684798364095072458815029376092732009249414926327459813530
    assert poseidon_native([1, 2]) == h
    assert poseidon_many([[1, 2]]) == [h]


def test_params_rejects_widths():
    for t in (0, 1, MAX_INPUTS + 2, "3"):
        with pytest.raises(InvalidInput):
            params(t)


# --------------------------------------------------------------------------- native twins


def test_circomlibjs_implementations_agree(circomlibjs):
    for n in WIDTHS:
        h = circomlibjs["hash"][n]
        assert h["reference"] == h["opt"] == h["wasm"], n


@pytest.mark.parametrize("n", WIDTHS)
def test_native_matches_circomlibjs(circomlibjs, n):
    assert [poseidon_native(v) for v in VECTORS[n]] == circomlibjs["hash"][n]["reference"]


@pytest.mark.parametrize("n", WIDTHS)
def test_numba_matches_circomlibjs(circomlibjs, n):
    want = circomlibjs["hash"][n]["reference"]
    assert poseidon_many(VECTORS[n]) == want
    assert poseidon_many(VECTORS[n], parallel=True) == want


def test_capacity_tag_matches_circomlibjs_poseidon_ex(circomlibjs):
    """``init`` is circomlib's PoseidonEx initialState: native, numba and gadget against circomlibjs's
    three implementations of ``poseidon(inputs, initState)``."""
    want = circomlibjs["tagged"]
    assert all(r == o == w for r, o, w in want)
    for (tag, *x), (ref, _, _) in zip(TAGGED, want, strict=True):
        assert poseidon_native(x, init=tag) == ref
        assert poseidon_many([x], init=tag) == [ref]
        assert ref != poseidon_native(x)  # the tag changes the hash
    # the gadget, one circuit per (width, tag): value, satisfied, a wrong claim unsatisfied
    for (tag, *x), (ref, _, _) in list(zip(TAGGED, want, strict=True))[:8]:
        inst, cs = _capacity_circuit(len(x), tag)
        w = cs.solve({"h": ref, "x": x})
        assert cs.is_satisfied(w) and lc_value(w, inst.out) == ref
        with pytest.raises(UnsatisfiedError):
            cs.solve({"h": (ref + 1) % R, "x": x})


def test_capacity_tag_numba_batches():
    rng = random.Random(11)
    for n, tag in ((2, TAG_LEAF), (4, TAG_NODE_4), (9, TAG_KEY_HASH)):
        rows = [[rng.randrange(R) for _ in range(n)] for _ in range(300)]
        serial = poseidon_many(rows, init=tag)
        assert poseidon_many(rows, parallel=True, init=tag) == serial
        assert serial[:3] == [poseidon_native(r, init=tag) for r in rows[:3]]
        mont = fr_from_ints([x for r in rows for x in r]).reshape(300, n, 4)
        assert fr_to_ints(poseidon_many_mont(mont, parallel=True, init=tag)) == serial
    for bad in (R, -1, 1.0, True):
        with pytest.raises(InvalidInput):
            poseidon_native([1, 2], init=bad)
        with pytest.raises(InvalidInput):
            poseidon_many([[1, 2]], init=bad)


def test_permutation_native_matches_circomlibjs(circomlibjs):
    for t, states in PERM_STATES.items():
        assert [poseidon_permutation_native(s) for s in states] == circomlibjs["perm"][t], t


def test_numba_batch_parallel_and_mont():
    rng = random.Random(7)
    for n in (1, 2, 3, 10):
        rows = [[rng.randrange(R) for _ in range(n)] for _ in range(300)]
        serial = poseidon_many(rows)
        assert poseidon_many(rows, parallel=True) == serial
        assert serial[:5] == [poseidon_native(r) for r in rows[:5]]
        mont = fr_from_ints([x for r in rows for x in r]).reshape(300, n, 4)
        assert fr_to_ints(poseidon_many_mont(mont)) == serial
    assert poseidon_many([]) == []
    assert poseidon_many_mont(np.zeros((0, 2, 4), dtype=np.uint64)).shape == (0, 4)


def test_native_rejects():
    for bad in ([], [0] * (MAX_INPUTS + 1)):
        with pytest.raises(InvalidInput):
            poseidon_native(bad)
        with pytest.raises(InvalidInput):
            poseidon_many([bad])
    with pytest.raises(InvalidInput):
        poseidon_native([R])
    with pytest.raises(InvalidInput):
        poseidon_native([-1])
    with pytest.raises(InvalidInput):
        poseidon_native([1.0])
    with pytest.raises(InvalidInput):
        poseidon_many([[1, 2], [3]])
    with pytest.raises(InvalidInput):
        poseidon_many([[R, 0]])
    with pytest.raises(InvalidInput):
        poseidon_permutation_native([0])
    with pytest.raises(InvalidInput):
        poseidon_many_mont(np.zeros((2, 2, 4), dtype=np.int64))
    with pytest.raises(InvalidInput):
        poseidon_many_mont(np.zeros((2, 17, 4), dtype=np.uint64))


# --------------------------------------------------------------------------- the gadget


def _hash_circuit(n: int):
    class PoseidonN(Circuit):
        h = Public()
        x = Secret(count=n)

        def define(self, api):
            api.assert_equal(poseidon(api, self.x), self.h)

    return compile(PoseidonN)


@pytest.mark.parametrize("n", WIDTHS)
def test_gadget_matches_circomlibjs(circomlibjs, n):
    cs = _hash_circuit(n)
    assert cs.n_constraints == COUNTS[n] + 1 == poseidon_constraints(n) + 1
    for v, h in zip(VECTORS[n], circomlibjs["hash"][n]["reference"], strict=True):
        w = cs.solve({"h": h, "x": v})
        assert cs.is_satisfied(w)
    with pytest.raises(UnsatisfiedError):
        cs.solve({"h": (h + 1) % R, "x": v})


def test_gadget_tampered_witness():
    cs = _hash_circuit(2)
    v = [3, 5]
    w = cs.solve({"h": poseidon_native(v), "x": v})
    assert cs.is_satisfied(w)
    partial = product_wires(cs, "poseidon2/partial")
    full = product_wires(cs, "poseidon2/full")
    assert len(partial) == 3 * N_ROUNDS_P[1] and len(full) == 3 * (8 * 3 - 1)
    for wire in (partial[0], partial[100], partial[-1]):
        assert_fails_in(cs, bump(w, wire), "poseidon2/partial")
    for wire in (full[0], full[-1]):
        assert_fails_in(cs, bump(w, wire), "poseidon2/full")
    assert not cs.is_satisfied(bump(w, cs.inputs["x"].first_wire))  # a changed input
    assert not cs.is_satisfied(bump(w, cs.inputs["h"].first_wire))  # a changed output


STATEMENT_WIDTHS = (5, 6)
"""Input counts of the statements' hashes that take a constant domain tag as their first input: 5 for
an AES-128 comm_k, 6 for a ChaCha20 comm_k (tag, suite, two key elements, IV, blinder)."""

CAPACITY_WIDTHS = (
    (2, TAG_LEAF),
    (2, TAG_NODE_2),
    (4, TAG_NODE_4),
    (4, TAG_PAD_COMMITMENT),
    (9, TAG_KEY_HASH),
)
"""Input counts and tags of the hashes that take their tag in the capacity element (issue #16): the
policy leaf and binary node (2), the 4-ary node and comm_pad (4), the policy key hash (9)."""


def _capacity_circuit(n: int, tag: int):
    class Capacity(Circuit):
        h = Public()
        x = Secret(count=n)

        def define(self, api):
            self.out = poseidon(api, self.x, init=tag)
            api.assert_equal(self.out, self.h)

    inst = Capacity()
    return inst, compile(inst)


@pytest.mark.parametrize(("n", "tag"), CAPACITY_WIDTHS)
def test_capacity_widths_tampered(n, tag):
    """A capacity-tagged hash costs what the untagged one does (the constant capacity's S-box is free);
    value against the Python twin, satisfied, forged round values caught where they are made, and the
    same inputs under another tag (or none) claimed: unsatisfied."""
    inst, cs = _capacity_circuit(n, tag)
    assert cs.n_constraints == COUNTS[n] + 1 == poseidon_constraints(n) + 1
    rng = random.Random(n + tag % 1000)
    x = [rng.randrange(R) for _ in range(n)]
    h = poseidon_native(x, init=tag)
    assign = {"h": h, "x": x}
    w = cs.solve(assign)
    assert cs.is_satisfied(w) and lc_value(w, inst.out) == h
    full, partial = f"poseidon{n}/full", f"poseidon{n}/partial"
    pw, fw = product_wires(cs, partial), product_wires(cs, full)
    assert len(pw) == 3 * N_ROUNDS_P[n - 1] and len(fw) == 3 * (8 * (n + 1) - 1)
    h_wire = cs.inputs["h"].first_wire
    for scope, wire in ((full, fw[0]), (partial, pw[0]), (partial, pw[-1]), (full, fw[-1])):
        assert_fails_in(cs, bump(w, wire), scope)
        cheat = solve_pinned(cs, assign, {wire: w.value(wire) + 1})
        cheat = cheat.replace(h_wire, lc_value(cheat, inst.out))
        bad = violated_rows(cs, cheat)
        assert len(bad) == 1 and cs.scope_of(bad[0]) == scope and cs.C.row(bad[0]) == {wire: 1}
    for other in (0, TAG_KEY_HASH + 1, TAG_LEAF if tag != TAG_LEAF else TAG_NODE_2):
        with pytest.raises(UnsatisfiedError):
            cs.solve({"h": poseidon_native(x, init=other), "x": x})
    with pytest.raises(InvalidInput):
        _capacity_circuit(n, R)


def _tagged_circuit(n: int):
    class Tagged(Circuit):
        h = Public()
        x = Secret(count=n - 1)

        def define(self, api):
            self.out = poseidon(api, [TAG_KEY_HASH, *self.x])
            api.assert_equal(self.out, self.h)

    inst = Tagged()
    return inst, compile(inst)


@pytest.mark.parametrize("n", STATEMENT_WIDTHS)
def test_statement_widths_tampered(n):
    """Value against the Python twin, satisfied, and forged round values caught where they are made.

    A cheater forging an internal wire recomputes every later round from it and claims the hash that
    comes out (``h`` set to match), so only the constraint that computes the forged wire can fail.
    """
    inst, cs = _tagged_circuit(n)
    assert cs.n_constraints == COUNTS[n] - 3 + 1 == poseidon_constraints(n, constant_inputs=1) + 1
    rng = random.Random(n)
    x = [rng.randrange(R) for _ in range(n - 1)]
    h = poseidon_native([TAG_KEY_HASH, *x])
    assign = {"h": h, "x": x}
    w = cs.solve(assign)
    assert cs.is_satisfied(w)
    assert lc_value(w, inst.out) == h
    full, partial = f"poseidon{n}/full", f"poseidon{n}/partial"
    pw, fw = product_wires(cs, partial), product_wires(cs, full)
    # the first-round S-boxes of the zero capacity element and the constant tag are free
    assert len(pw) == 3 * N_ROUNDS_P[n - 1] and len(fw) == 3 * (8 * (n + 1) - 2)
    h_wire = cs.inputs["h"].first_wire
    # the claimed hash alone: the final equality
    for delta in (1, R - 1):
        assert violated_rows(cs, bump(w, h_wire, delta)) == [cs.n_constraints - 1]
    # a wire in place, nothing else changed: its own S-box row (or the next one reading it)
    for scope, wires in ((full, fw), (partial, pw)):
        for wire in (wires[0], wires[len(wires) // 2], wires[-1]):
            assert_fails_in(cs, bump(w, wire), scope)
    # forged round values with everything after them recomputed and the resulting hash claimed
    for scope, wire in ((full, fw[0]), (full, fw[4]), (partial, pw[0]), (partial, pw[-1]), (full, fw[-1])):
        cheat = solve_pinned(cs, assign, {wire: w.value(wire) + 1})
        out = lc_value(cheat, inst.out)
        assert out != h
        cheat = cheat.replace(h_wire, out)
        bad = violated_rows(cs, cheat)
        assert len(bad) == 1 and cs.scope_of(bad[0]) == scope, (scope, bad)
        assert cs.C.row(bad[0]) == {wire: 1}  # the product that defines the forged wire
    # another preimage claimed for the same hash: the input changed in place breaks the first round
    assert_fails_in(cs, bump(w, cs.inputs["x"].first_wire), full)


def test_gadget_constant_inputs_are_free():
    class Tagged(Circuit):
        x = Secret(count=2)

        def define(self, api):
            self.out = poseidon(api, [12345, *self.x])  # a constant domain tag first

    cs = compile(Tagged)
    assert cs.n_constraints == poseidon_constraints(3, constant_inputs=1) == 258
    w = cs.solve({"x": [7, 8]})
    assert cs.is_satisfied(w)

    class AllConst(Circuit):
        x = Secret()

        def define(self, api):
            api.assert_equal(self.x, poseidon(api, [1, 2]))

    cs = compile(AllConst)
    assert cs.n_constraints == 1  # folded at compile time
    cs.solve({"x": poseidon_native([1, 2])})


@pytest.mark.parametrize("t", sorted(PERM_STATES))
def test_permutation_gadget(circomlibjs, t):
    class Perm(Circuit):
        s = Secret(count=t)
        o = Public(count=t)

        def define(self, api):
            for a, b in zip(poseidon_permutation(api, self.s), self.o, strict=True):
                api.assert_equal(a, b)

    cs = compile(Perm)
    assert cs.n_constraints == 3 * (8 * t + N_ROUNDS_P[t - 2]) + t
    for s, o in zip(PERM_STATES[t], circomlibjs["perm"][t], strict=True):
        assert cs.is_satisfied(cs.solve({"s": s, "o": o}))
    with pytest.raises(UnsatisfiedError):
        cs.solve({"s": s, "o": [o[0], *[(x + 1) % R for x in o[1:]]]})


def test_registered_circuit():
    assert "zkmb.gadgets.poseidon" in GADGET_MODULES
    cs = poseidon2_circuit()
    assert cs.n_constraints == 240  # circomlib Poseidon(2): 240
    w = cs.solve({"x": [1, 2]})
    assert cs.is_satisfied(w)


def test_gadget_rejects_widths():
    class Bad(Circuit):
        x = Secret(count=MAX_INPUTS + 1)

        def define(self, api):
            poseidon(api, self.x)

    with pytest.raises(InvalidInput):
        compile(Bad)


# --------------------------------------------------------------------------- circom (optional)

CIRCOM2 = TOOLS / ".bin" / "circom2"
CIRCOMLIB = TOOLS / "circomlib" / "circuits"
CIRCOM_WIDTHS = (1, 2, 3, 4, 11, 16)  # all of 1..16 in one circuit (~25 s) also gave sum(COUNTS)


@pytest.mark.slow
def test_counts_match_circom_O2(tmp_path):
    """circom2 --O2 on circomlib's Poseidon(n) for a few n in one circuit: the same total as ours."""
    require(
        bool(shutil.which("node")) and CIRCOM2.exists() and CIRCOMLIB.is_dir(),
        f"node, circom2 and circomlib are needed (looked in {TOOLS})",
    )
    lib = tmp_path / "lib" / "circomlib" / "circuits"
    lib.mkdir(parents=True)
    for f in CIRCOMLIB.glob("poseidon*.circom"):  # circom2 (WASI) sees only its working directory
        shutil.copy(f, lib / f.name)
    body = "\n".join(
        f"    signal input x{n}[{n}]; signal output h{n}; component p{n} = Poseidon({n});\n"
        f"    for (var i = 0; i < {n}; i++) {{ p{n}.inputs[i] <== x{n}[i]; }} h{n} <== p{n}.out;"
        for n in CIRCOM_WIDTHS
    )
    src = (
        'pragma circom 2.0.0;\ninclude "circomlib/circuits/poseidon.circom";\n'
        f"template Main() {{\n{body}\n}}\ncomponent main = Main();\n"
    )
    (tmp_path / "all.circom").write_text(src)
    res = subprocess.run(
        ["node", str(CIRCOM2), "all.circom", "--r1cs", "--O2", "-l", "lib", "-o", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    cs = read_r1cs(tmp_path / "all.r1cs")
    assert cs.n_constraints == sum(COUNTS[n] for n in CIRCOM_WIDTHS)
