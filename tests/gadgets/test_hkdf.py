"""HMAC-SHA256, HKDF and the TLS 1.3 key schedule: native twins and circuits against RFC 8448,
``cryptography`` and ``hashlib``/``hmac``; satisfiability, tampering and pinned constraint counts.

The RFC 8448 (simple 1-RTT) values come from the shared vector file; the client finished_key and
Finished verify_data, which the file does not list, are quoted from RFC 8448 §3.
"""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import json
import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st

from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import bytes_from_values, witness_bytes
from zkmb.gadgets.hmac import (
    EMPTY_HASH,
    co_key_schedule,
    co_key_schedule_native,
    derive_secret,
    derive_secret_native,
    finished_key,
    finished_key_native,
    hkdf_expand,
    hkdf_expand_label,
    hkdf_expand_native,
    hkdf_extract,
    hkdf_extract_native,
    hkdf_label,
    hmac_key,
    hmac_sha256,
    hmac_sha256_native,
    traffic_key_iv,
    traffic_key_iv_native,
)
from zkmb.gadgets.registry import builders
from zkmb.r1cs import Circuit, Public, Secret, compile

from .tamper import assert_fails_in, bit_wires, count_under, flip, product_wires

# RFC 8448 §3, "{server} calculate (client) finished": expanded (finished_key) and finished (verify_data)
RFC_C_FINISHED_KEY = bytes.fromhex("b80ad01015fb2f0bd65ff7d4da5d6bf83f84821d1f87fdc7d3c75b5a7b42d9c4")
RFC_C_FINISHED = bytes.fromhex("a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")
# RFC 8448 §3: info of HKDF-Expand-Label(., "finished", "", 32)
RFC_FINISHED_INFO = bytes.fromhex("0020 0e 746c73313320 66696e6973686564 00")


@pytest.fixture(scope="module")
def v() -> dict[str, bytes]:
    from ..conftest import shared_data

    data = json.loads(shared_data("vectors", "rfc8448-simple-1rtt-key-schedule.json").read_text())
    return {k: bytes.fromhex(x) for k, x in data.items() if k != "source"}


def c_hmac_sha256(key: bytes, msg: bytes) -> bytes:
    h = c_hmac.HMAC(key, hashes.SHA256())
    h.update(msg)
    return h.finalize()


def c_expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


# --------------------------------------------------------------------------- native twins


@pytest.mark.parametrize("klen", [0, 1, 20, 32, 33, 64])
@pytest.mark.parametrize("mlen", [0, 1, 32, 55, 56, 64, 100])
def test_hmac_native(klen, mlen):
    rng = random.Random(klen * 1000 + mlen)
    key = bytes(rng.getrandbits(8) for _ in range(klen))
    msg = bytes(rng.getrandbits(8) for _ in range(mlen))
    ref = std_hmac.new(key, msg, hashlib.sha256).digest()
    assert hmac_sha256_native(key, msg) == ref == c_hmac_sha256(key, msg)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.binary(max_size=120), st.integers(1, 32))
def test_hkdf_native_random(salt, ikm, length):
    prk = hkdf_extract_native(salt, ikm)
    assert prk == std_hmac.new(salt, ikm, hashlib.sha256).digest()
    info = ikm[:40]
    assert hkdf_expand_native(prk, info, length) == c_expand(prk, info, length)
    assert hkdf_expand_native(prk, info, length) == HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def test_hkdf_label_layout():
    assert hkdf_label("finished", b"", 32) == RFC_FINISHED_INFO
    lab = hkdf_label(b"c hs traffic", bytes(32), 32)
    assert len(lab) == 2 + 1 + 18 + 1 + 32  # + 0x01 = 55 bytes: one block after the 64-byte key block
    assert lab[:3] == b"\x00\x20\x12" and lab[21] == 32


def test_native_key_schedule_rfc8448(v):
    # the whole chain from the ECDHE secret, each step checked against RFC 8448 and `cryptography`
    zeros = bytes(32)
    early = hkdf_extract_native(zeros, zeros)
    assert early == v["early"]
    assert derive_secret_native(early, "derived", EMPTY_HASH) == v["derived_early"]
    hs = hkdf_extract_native(v["derived_early"], v["ecdhe_shared_secret"])
    assert hs == v["handshake_secret"]
    h2, h3 = v["transcript_hash_through_server_hello"], v["transcript_hash_through_server_finished"]
    for name, secret, label, th in (
        ("c_hs_traffic", hs, "c hs traffic", h2),
        ("s_hs_traffic", hs, "s hs traffic", h2),
        ("derived_handshake", hs, "derived", EMPTY_HASH),
        ("c_ap_traffic", v["master_secret"], "c ap traffic", h3),
        ("s_ap_traffic", v["master_secret"], "s ap traffic", h3),
    ):
        got = derive_secret_native(secret, label, th)
        assert got == v[name] == c_expand(secret, hkdf_label(label, th, 32), 32), name
    assert hkdf_extract_native(v["derived_handshake"], zeros) == v["master_secret"]
    for side in ("s_hs", "c_hs", "c_ap"):
        key, iv = traffic_key_iv_native(v[f"{side}_traffic"], 16)
        assert (key, iv) == (v[f"{side}_key"], v[f"{side}_iv"]), side
    assert finished_key_native(v["s_hs_traffic"]) == v["s_hs_finished_key"]
    assert finished_key_native(v["c_hs_traffic"]) == RFC_C_FINISHED_KEY
    assert hmac_sha256_native(RFC_C_FINISHED_KEY, h3) == RFC_C_FINISHED
    co = co_key_schedule_native(hs, h2, h3, 16)
    assert co["client_finished"] == RFC_C_FINISHED and co["ap_iv"] == v["c_ap_iv"]
    # ChaCha20-Poly1305 key size: a 32-byte expansion whose first 16 bytes are the AES key
    key32, _ = traffic_key_iv_native(v["c_ap_traffic"], 32)
    assert key32 == c_expand(v["c_ap_traffic"], hkdf_label("key", b"", 32), 32)
    assert key32[:16] != v["c_ap_key"]  # the length is part of the label


def test_native_rejects():
    with pytest.raises(InvalidInput):
        hkdf_expand_native(bytes(32), b"", 33)
    with pytest.raises(InvalidInput):
        hkdf_expand_native(bytes(32), b"", 0)
    with pytest.raises(InvalidInput):
        traffic_key_iv_native(bytes(32), 24)
    with pytest.raises(InvalidInput):
        hmac_sha256_native(bytes(65), b"")
    with pytest.raises(InvalidInput):
        hkdf_label("x" * 250, b"", 32)
    with pytest.raises(InvalidInput):
        hkdf_label("clé", b"", 32)


# --------------------------------------------------------------------------- the key schedule circuit


class KeySchedule(Circuit):
    """SPEC §3's chain (co_key_schedule) plus the server-side secrets, from HS, H2 (public), H3."""

    h2 = Public(count=32)
    hs = Secret(count=32)
    h3 = Secret(count=32)

    def define(self, api):
        with api.scope("inputs"):
            hs, h2, h3 = (bytes_from_values(api, x) for x in (self.hs, self.h2, self.h3))
        n0 = api.n_constraints
        with api.scope("hs_pads"):
            k_hs = hmac_key(api, hs)
        n1 = api.n_constraints
        self.co = co_key_schedule(api, k_hs, h2, h3, 16)
        n2 = api.n_constraints
        self.co_count = (n1 - n0, n2 - n1)
        with api.scope("server"):
            s_hs = derive_secret(api, k_hs, "s hs traffic", h2)
            k_shs = hmac_key(api, s_hs)
            s_key, s_iv = traffic_key_iv(api, k_shs, 16)
            s_fk = finished_key(api, k_shs)
            s_ap = derive_secret(api, self.co.ms, "s ap traffic", h3)
        self.server = dict(
            s_hs_traffic=s_hs, s_hs_key=s_key, s_hs_iv=s_iv, s_hs_finished_key=s_fk, s_ap_traffic=s_ap
        )


@pytest.fixture(scope="module")
def schedule(v):
    inst = KeySchedule()
    cs = compile(inst)
    h2, h3 = v["transcript_hash_through_server_hello"], v["transcript_hash_through_server_finished"]
    w = cs.solve({"hs": list(v["handshake_secret"]), "h2": list(h2), "h3": list(h3)})
    return inst, cs, w


def test_key_schedule_rfc8448(schedule, v):
    inst, cs, w = schedule
    assert cs.is_satisfied(w)
    ints = w.to_ints()
    co = inst.co
    got = {k: witness_bytes(ints, getattr(co, k)) for k in vars(co)}
    assert got == {
        "chts": v["c_hs_traffic"],
        "hs_key": v["c_hs_key"],
        "hs_iv": v["c_hs_iv"],
        "finished_key": RFC_C_FINISHED_KEY,
        "client_finished": RFC_C_FINISHED,
        "dhs": v["derived_handshake"],
        "ms": v["master_secret"],
        "cats": v["c_ap_traffic"],
        "ap_key": v["c_ap_key"],
        "ap_iv": v["c_ap_iv"],
    }
    assert got == co_key_schedule_native(
        v["handshake_secret"],
        v["transcript_hash_through_server_hello"],
        v["transcript_hash_through_server_finished"],
        16,
    )
    assert {k: witness_bytes(ints, x) for k, x in inst.server.items()} == {k: v[k] for k in inst.server}
    assert w.public_inputs() == list(v["transcript_hash_through_server_hello"])


def test_key_schedule_counts(schedule):
    inst, cs, _ = schedule
    pads, chain = inst.co_count
    # two compressions from the constant IV, half the block constant; the two share the sigma xors
    # of the key words (ipad and opad blocks differ by a constant xor), and the d and h words of
    # each state stay unreduced (a compression only adds them)
    assert pads == 49_965
    assert chain == 713_752
    assert pads + chain == 763_717  # the whole CO chain (32 compressions' worth)
    assert {
        name: count_under(cs, f"co_keys/{name}")
        for name in ("chts", "hs_traffic", "client_finished", "derived", "master", "cats", "ap_traffic")
    } == {
        "chts": 51_243,  # expand-label, 32-byte variable context: inner + outer compression
        "hs_traffic": 182_779,  # CHTS pads + key + iv + finished_key
        "client_finished": 101_173,  # HMAC(finished_key, H3): pads + inner + outer
        "derived": 44_227,  # constant label and context: the inner message schedule is constant
        "master": 94_640,  # HKDF-Extract(dHS, 0^32): pads + constant-message inner + outer
        "cats": 101_138,  # MS pads + expand-label with H3
        "ap_traffic": 138_552,  # CATS pads + key + iv
    }
    # expansions with a constant label and no context, from cached pad states: the inner message
    # schedule is constant, so they cost less than two compressions; compressions from one state
    # share round 0's Σ/Ch/Maj (the second and third use of CHTS's pads are cheaper than the first)
    assert count_under(cs, "co_keys/hs_traffic/hmac_key") == 49_965
    assert count_under(cs, "co_keys/hs_traffic/key") == 44_535
    assert count_under(cs, "co_keys/hs_traffic/iv") == 44_052  # 12 bytes: 3 of 8 final additions
    assert count_under(cs, "co_keys/hs_traffic/finished_key") == 44_227
    assert count_under(cs, "co_keys/client_finished/hmac") == 51_208  # HMAC of 32 bytes, cached pads
    reg = builders()
    assert reg["hkdf_expand_label"]().n_constraints == 49_965 + 51_243
    assert reg["hmac_sha256"]().n_constraints == 49_965 + 51_208
    assert reg["tls13_co_key_schedule"]().n_constraints == 763_717


def test_key_schedule_tampered(schedule):
    inst, cs, w = schedule
    # an internal decomposition bit deep inside CATS' inner compression
    scope = "co_keys/cats/hmac/inner/sha256_compress/round40"
    assert_fails_in(cs, flip(w, bit_wires(cs, scope)[10]), scope)
    # a xor product of the HS pad compression
    scope = "hs_pads/hmac_key/sha256_compress/round5"
    assert_fails_in(cs, w.replace(product_wires(cs, scope)[0], 5), scope)
    # one output bit: the last IV byte of the application traffic IV
    final = "co_keys/ap_traffic/iv/hmac/outer/sha256_compress/final"
    assert_fails_in(cs, flip(w, inst.co.ap_iv[11][0].wire), final)
    # the client Finished HMAC output
    final = "co_keys/client_finished/hmac/outer/sha256_compress/final"
    assert_fails_in(cs, flip(w, inst.co.client_finished[0][7].wire), final)
    # an input byte out of range
    hs_bits = bit_wires(cs, "inputs")[:8]
    assert_fails_in(cs, w.replace(hs_bits[0], 2), "inputs")
    # round 0 of an outer compression, where the pad state's unreduced d and h and the inner
    # digest's unreduced first word are added: a sum bit and the top carry bit
    scope = "co_keys/cats/hmac/outer/sha256_compress/round0"
    assert_fails_in(cs, flip(w, bit_wires(cs, scope)[0]), scope)
    assert_fails_in(cs, flip(w, bit_wires(cs, scope)[34]), scope)
    # the W16 decomposition of that outer block (it adds the unreduced W0)
    scope = "co_keys/cats/hmac/outer/sha256_compress/schedule"
    assert_fails_in(cs, flip(w, bit_wires(cs, scope)[33]), scope)
    # products shared by later compressions: round 0 of the first compression from CHTS's inner pad
    # state (reused by iv and finished_key), and the sigma xors of the ipad block (reused by opad)
    scope = "co_keys/hs_traffic/key/hmac/inner/sha256_compress/round0"
    assert_fails_in(cs, w.replace(product_wires(cs, scope)[-1], 3), scope)
    assert not product_wires(cs, "co_keys/hs_traffic/iv/hmac/inner/sha256_compress/round0")
    scope = "co_keys/hs_traffic/hmac_key/sha256_compress/schedule"
    assert_fails_in(cs, w.replace(product_wires(cs, scope)[0], 3), scope)


# --------------------------------------------------------------------------- generic HMAC / HKDF circuit


class Generic(Circuit):
    key = Secret(count=32)
    short_key = Secret(count=20)
    msg = Secret(count=60)
    info = Secret(count=20)
    ctx = Secret(count=32)

    def define(self, api):
        with api.scope("inputs"):
            key, skey, msg, info, ctx = (
                bytes_from_values(api, x) for x in (self.key, self.short_key, self.msg, self.info, self.ctx)
            )
        k = hmac_key(api, key)
        self.out = {
            "hmac32": hmac_sha256(api, k, msg[:32]),
            "hmac60": hmac_sha256(api, k, msg),  # two inner blocks
            "hmac_short_key": hmac_sha256(api, skey, msg[:7]),
            "extract": hkdf_extract(api, k, msg[:32]),
            "expand12": hkdf_expand(api, k, info, 12),
            "label16": hkdf_expand_label(api, k, "quic key", ctx, 16),
        }
        self.out["key32"], self.out["iv"] = traffic_key_iv(api, k, 32)


def generic_expected(key, skey, msg, info, ctx):
    return {
        "hmac32": c_hmac_sha256(key, msg[:32]),
        "hmac60": c_hmac_sha256(key, msg),
        "hmac_short_key": c_hmac_sha256(skey, msg[:7]),
        "extract": std_hmac.new(key, msg[:32], hashlib.sha256).digest(),  # Extract(salt=key, IKM)
        "expand12": c_expand(key, info, 12),
        "label16": c_expand(key, hkdf_label("quic key", ctx, 16), 16),
        "key32": c_expand(key, hkdf_label("key", b"", 32), 32),
        "iv": c_expand(key, hkdf_label("iv", b"", 12), 12),
    }


@pytest.fixture(scope="module")
def generic():
    inst = Generic()
    return inst, compile(inst)


def run_generic(generic, key, skey, msg, info, ctx):
    inst, cs = generic
    w = cs.solve(
        {"key": list(key), "short_key": list(skey), "msg": list(msg), "info": list(info), "ctx": list(ctx)}
    )
    ints = w.to_ints()
    got = {k: witness_bytes(ints, x) for k, x in inst.out.items()}
    assert got == generic_expected(key, skey, msg, info, ctx)


@settings(max_examples=4, deadline=None)
@given(st.binary(min_size=164, max_size=164))
def test_generic_random(generic, data):
    run_generic(generic, data[:32], data[32:52], data[52:112], data[112:132], data[132:])


@pytest.mark.parametrize("fill", [b"\x00", b"\xff"])
def test_generic_boundary(generic, fill):
    run_generic(generic, fill * 32, fill * 20, fill * 60, fill * 20, fill * 32)


def test_circuit_rejects_bad_arguments():
    def build(fn):
        class T(Circuit):
            x = Secret(count=32)

            def define(self, api):
                fn(api, bytes_from_values(api, self.x))

        return compile(T)

    with pytest.raises(InvalidInput):
        build(lambda api, k: hkdf_expand(api, k, b"", 33))
    with pytest.raises(InvalidInput):
        build(lambda api, k: traffic_key_iv(api, k, 12))
    with pytest.raises(InvalidInput):
        build(lambda api, k: derive_secret(api, k, "derived", k[:31]))
    with pytest.raises(InvalidInput):
        build(lambda api, k: hmac_key(api, k + k + k))
    with pytest.raises(InvalidInput):
        build(lambda api, k: hmac_sha256(api, k, [[0] * 7]))
