"""Statement keys on disk (circuits/keys.py, ``zkmb setup``): generate, load, refuse what does not match.

Only the two small circuits (q_64, pad_block) are keyed here; setup takes a few seconds each after
the kernels are compiled.
"""

from __future__ import annotations

import json
import os
import shutil

import dns.message
import dns.rdatatype
import pytest
from zkmb.circuits.commit import CHACHA20, comm_k_native
from zkmb.circuits.keys import (
    CIRCUITS,
    MANIFEST_NAME,
    KeyMismatch,
    compile_circuit,
    generate_keys,
    key_paths,
    load_keys,
    read_manifest,
)
from zkmb.circuits.pad import pad_circuit
from zkmb.circuits.public import pad_public_inputs
from zkmb.circuits.query import query_circuit
from zkmb.circuits.query_witness import query_assignment
from zkmb.circuits.witness import ClientKeys, pad_assignment, pad_block_native

from zkmb.cli import main
from zkmb.errors import InvalidInput
from zkmb.groth16.keys import ProvingKey, VerifyingKey
from zkmb.groth16.prover import prove
from zkmb.groth16.verifier import verify
from zkmb.policy import Kind, Rule, name_key, normalise, policy_from_rules

NAMES = ["q_64", "pad_block"]


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    steps = []
    res = generate_keys(d, NAMES, progress=lambda n, s, t: steps.append((n, s)))
    assert [r.status for r in res] == ["created", "created"]
    for name in NAMES:
        assert [s for n, s in steps if n == name] == ["compile", "setup", "write", "done"]
    return d


def _copy(key_dir, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(key_dir, d)
    return d


@pytest.fixture(scope="module")
def client_keys():
    key, iv, blinder = os.urandom(32), os.urandom(12), 12345
    return ClientKeys(CHACHA20, key, iv, blinder, comm_k_native(CHACHA20, key, iv, blinder))


def test_manifest_content(key_dir):
    data = json.loads((key_dir / MANIFEST_NAME).read_text())
    assert data["format"] == 1 and set(data["circuits"]) == set(NAMES)
    for name in NAMES:
        e = data["circuits"][name]
        cs = compile_circuit(name)
        pk_path, vk_path = key_paths(key_dir, name)
        assert e["digest"] == cs.digest().hex()
        assert (e["constraints"], e["public"], e["wires"]) == (cs.n_constraints, cs.n_public, cs.n_wires)
        assert (e["pk_file"], e["vk_file"]) == (pk_path.name, vk_path.name)
        assert (e["pk_bytes"], e["vk_bytes"]) == (pk_path.stat().st_size, vk_path.stat().st_size)
        assert e["created"].endswith("Z") and len(e["created"]) == 20
    assert read_manifest(key_dir) == data["circuits"]
    assert data["circuits"]["q_64"]["constraints"] == 8_140
    assert data["circuits"]["pad_block"]["constraints"] == 22_437
    # what clients download: the compact proving keys and the SRS parts, with their digests
    for name in NAMES:
        e = data["circuits"][name]
        pkc = key_dir / e["pkc_file"]
        assert e["pkc_file"] == f"{name}.pkc" and e["pkc_bytes"] == pkc.stat().st_size
        assert e["pkc_sha256"] == _sha(pkc) and e["vk_sha256"] == _sha(key_paths(key_dir, name)[1])
        assert e["pkc_bytes"] < e["pk_bytes"] / 3
    parts = data["srs"]["parts"]
    assert [p["index"] for p in parts] == list(range(len(parts))) and parts[0]["start"] == 0
    assert all(p["sha256"] == _sha(key_dir / p["file"]) for p in parts)


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _client_dir(key_dir, tmp_path):
    """What a client's bootstrap leaves: the manifest, NAME.vk, NAME.pkc and the SRS parts (no NAME.pk,
    no srs.bin)."""
    d = tmp_path / "client"
    d.mkdir()
    for p in key_dir.iterdir():
        if p.suffix in (".vk", ".pkc", ".srsc", ".json"):
            shutil.copy(p, d / p.name)
    return d


def test_client_directory_decompresses_checks_and_caches(key_dir, tmp_path):
    from zkmb.circuits.keys import verify_key_dir

    d = _client_dir(key_dir, tmp_path)
    cache = tmp_path / "verdicts"
    steps = []
    reps = verify_key_dir(d, NAMES, cache, progress=lambda n, s, t: steps.append((n, s)))
    assert all("cached" not in r.timings for r in reps.values())
    for name in NAMES:
        assert [s for n, s in steps if n == name] == ["decompress", "decompressed", "check", "ok"]
        pk = ProvingKey.load(key_paths(d, name)[0])
        assert pk.source_sha256 == _sha(d / f"{name}.pkc")
        full = ProvingKey.load(key_paths(key_dir, name)[0])
        assert all(bytes(getattr(pk, k)) == bytes(getattr(full, k)) for k in ("a", "b1", "b2", "c", "h"))
    load_keys(d, NAMES, "prover", against="manifest")  # what the prover then maps
    steps.clear()
    assert all(
        "cached" in r.timings
        for r in verify_key_dir(d, NAMES, cache, progress=lambda *a: steps.append(a[:2])).values()
    )
    assert ("q_64", "decompress") not in steps  # the cache was reused


@pytest.mark.parametrize("damage", ["flip", "truncate", "other_source", "garbage"])
def test_client_cache_damage_is_rebuilt(key_dir, tmp_path, damage, caplog):
    """A corrupt, truncated or foreign decompressed cache is never trusted: it is rebuilt from NAME.pkc
    (with a warning), also when a positive verdict is cached."""
    from zkmb.circuits.keys import verify_key_dir

    d = _client_dir(key_dir, tmp_path)
    cache = tmp_path / "verdicts"
    verify_key_dir(d, ["q_64"], cache)
    pk_path = key_paths(d, "q_64")[0]
    good = pk_path.read_bytes()
    if damage == "flip":
        raw = bytearray(good)
        raw[-77] ^= 0x10
        pk_path.write_bytes(bytes(raw))
    elif damage == "truncate":
        pk_path.write_bytes(good[: len(good) // 2])
    elif damage == "other_source":
        pk = ProvingKey.load(pk_path)
        pk.source_sha256 = "00" * 32
        pk.save(pk_path)
    else:
        pk_path.write_bytes(b"not a key")
    steps = []
    rep = verify_key_dir(d, ["q_64"], cache, progress=lambda n, s, t: steps.append(s))
    assert steps[:2] == ["decompress", "decompressed"] and "cached" in rep["q_64"].timings
    assert "rebuilding" in caplog.text
    assert ProvingKey.load(pk_path).source_sha256 == _sha(d / "q_64.pkc")


def test_vk_must_match_the_proving_key(key_dir, tmp_path):
    """NAME.vk from another setup of the same circuit (same digest, other alpha/beta/gamma/delta) is
    refused, in a setup's directory and a client's."""
    from zkmb.circuits.keys import verify_key_dir

    from zkmb.groth16.keycheck import KeyCheckFailed

    other = tmp_path / "other"
    generate_keys(other, ["q_64"])
    for d in (_copy(key_dir, tmp_path), _client_dir(key_dir, tmp_path)):
        shutil.copy(key_paths(other, "q_64")[1], key_paths(d, "q_64")[1])
        with pytest.raises(KeyCheckFailed, match="q_64: q_64.vk is not the verifying key inside"):
            verify_key_dir(d, ["q_64"], tmp_path / "verdicts")


def test_client_files_written_for_an_older_directory(key_dir, tmp_path):
    """A key directory made before the compact files: `zkmb setup` (keys current, skipped) writes NAME.pkc
    and the SRS parts with their manifest records and leaves the keys alone."""
    d = _copy(key_dir, tmp_path)
    data = json.loads((d / MANIFEST_NAME).read_text())
    for e in data["circuits"].values():
        for k in ("pkc_file", "pkc_bytes", "pkc_sha256", "vk_sha256"):
            del e[k]
    del data["srs"]["parts"]
    (d / MANIFEST_NAME).write_text(json.dumps(data))
    for p in [*d.glob("*.pkc"), *d.glob("*.srsc")]:
        p.unlink()
    pk_path = key_paths(d, "q_64")[0]
    before = pk_path.stat().st_mtime_ns
    steps = []
    res = generate_keys(d, NAMES, progress=lambda n, s, t: steps.append((n, s)))
    assert [r.status for r in res] == ["skipped", "skipped"] and pk_path.stat().st_mtime_ns == before
    assert ("q_64", "compact") in steps and ("srs.bin", "compact") in steps
    fresh = json.loads((d / MANIFEST_NAME).read_text())
    assert fresh["circuits"]["q_64"]["pkc_sha256"] == _sha(d / "q_64.pkc")
    assert fresh["srs"]["parts"] and (d / "srs_0.srsc").is_file()
    steps.clear()
    generate_keys(d, NAMES, progress=lambda n, s, t: steps.append((n, s)))
    assert not any(s == "compact" for _, s in steps)  # now current: nothing rewritten


def test_load_prove_verify_pad(key_dir, client_keys):
    pks = load_keys(key_dir, ["pad_block"], role="prover")
    vks = load_keys(key_dir, ["pad_block"], role="verifier", against="manifest")
    assert isinstance(pks["pad_block"], ProvingKey) and isinstance(vks["pad_block"], VerifyingKey)
    cs = pad_circuit("chacha20")
    pa = pad_assignment(client_keys, 3, 2)
    assert pa.pad == pad_block_native(CHACHA20, client_keys.key, client_keys.iv, 3, 2)
    proof = prove(pks["pad_block"], cs.solve(pa.assignment), cs=cs)
    public = pad_public_inputs(client_keys.comm_k, 3, 2, pa.comm_pad)
    assert verify(vks["pad_block"], public, proof)
    assert not verify(vks["pad_block"], pad_public_inputs(client_keys.comm_k, 4, 2, pa.comm_pad), proof)


def test_load_prove_verify_q64(key_dir):
    rules = [Rule(name_key("evil.com"), Kind.SUBTREE, "evil.com", "test", 1)]
    policy = policy_from_rules(normalise(rules))
    key, iv = os.urandom(32), os.urandom(12)
    pads = b"".join(pad_block_native(CHACHA20, key, iv, 0, j) for j in range(7))
    msg = dns.message.make_query("ok.example", dns.rdatatype.A, use_edns=False).to_wire()
    plain = len(msg).to_bytes(2, "big") + msg + b"\x17"
    ct = bytes(a ^ b for a, b in zip(plain, pads, strict=False))
    qa = query_assignment(pads, ct, policy, size=64)
    keys = load_keys(key_dir, ["q_64"], role="prover")
    vk = load_keys(key_dir, ["q_64"], role="verifier")["q_64"]
    cs = query_circuit(64)
    proof = prove(keys["q_64"], cs.solve(qa.assignment), cs=cs)
    assert verify(vk, qa.public, proof)
    assert not verify(vk, [*qa.public[:-1], (qa.public[-1] + 1)], proof)  # another policy root


def test_digest_mismatch_refused(key_dir, tmp_path):
    d = _copy(key_dir, tmp_path)
    # q_64's keys put in pad_block's place: their digest is not pad_block's
    for src, dst in zip(key_paths(d, "q_64"), key_paths(d, "pad_block"), strict=True):
        shutil.copy(src, dst)
    for role in ("prover", "verifier"):
        with pytest.raises(KeyMismatch, match="pad_block.*another circuit"):
            load_keys(d, ["pad_block"], role=role)
        with pytest.raises(KeyMismatch, match="another circuit"):
            load_keys(d, ["pad_block"], role=role, against="manifest")
    # a manifest for another version of the circuit is refused against the compiled circuit
    data = json.loads((d / MANIFEST_NAME).read_text())
    data["circuits"]["q_64"]["digest"] = "00" * 32
    (d / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(KeyMismatch, match="manifest .* another version"):
        load_keys(d, ["q_64"], role="verifier")
    with pytest.raises(KeyMismatch, match="another circuit"):
        load_keys(d, ["q_64"], role="verifier", against="manifest")


@pytest.mark.parametrize("role", ["prover", "verifier"])
def test_corrupt_file_refused(key_dir, tmp_path, role):
    d = _copy(key_dir, tmp_path)
    path = key_paths(d, "q_64")[0 if role == "prover" else 1]
    data = bytearray(path.read_bytes())
    data[-9] ^= 0x40  # a payload byte
    path.write_bytes(bytes(data))
    with pytest.raises(KeyMismatch, match="checksum"):
        load_keys(d, ["q_64"], role=role)
    path.write_bytes(bytes(data[:-100]))
    with pytest.raises(KeyMismatch, match="truncated|size"):
        load_keys(d, ["q_64"], role=role)
    path.unlink()
    with pytest.raises(KeyMismatch, match="missing"):
        load_keys(d, ["q_64"], role=role)


def test_bad_arguments(key_dir):
    with pytest.raises(InvalidInput, match="unknown circuit"):
        load_keys(key_dir, ["q_65"])
    with pytest.raises(InvalidInput, match="role"):
        load_keys(key_dir, ["q_64"], role="middlebox")
    with pytest.raises(KeyMismatch, match="no entry"):
        load_keys(key_dir, ["q_128"], against="manifest")
    assert set(CIRCUITS) == {
        "co_chacha20",
        "co_aes128gcm",
        "pad_block",
        "pad_block_aes128gcm",
        "pad_blocks_3",
        "q_64",
        "q_128",
        "q_192",
        "q_320",
        "q_448",
    }


def test_malformed_manifest(key_dir, tmp_path):
    d = _copy(key_dir, tmp_path)
    (d / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(InvalidInput, match="malformed manifest"):
        load_keys(d, ["q_64"])


def test_skip_if_current(key_dir, tmp_path, capsys):
    d = _copy(key_dir, tmp_path)
    pk_path, vk_path = key_paths(d, "q_64")
    before = (pk_path.stat().st_mtime_ns, vk_path.stat().st_mtime_ns)
    res = generate_keys(d, NAMES)
    assert [r.status for r in res] == ["skipped", "skipped"]
    assert (pk_path.stat().st_mtime_ns, vk_path.stat().st_mtime_ns) == before
    # the CLI's default action (and `generate`) skip too, and report on stderr
    assert main(["setup", "--keys", str(d), "--circuits", "q_64"]) == 0
    assert main(["setup", "generate", "--keys", str(d), "--circuits", "q_64,pad_block"]) == 0
    out = capsys.readouterr()
    assert out.out.count("skipped") == 3 and "[1/1] q_64: skipped" in out.err
    # a key file for another circuit is not "current": it is regenerated
    shutil.copy(key_paths(d, "pad_block")[1], vk_path)
    res = generate_keys(d, ["q_64"])
    assert res[0].status == "created"
    load_keys(d, ["q_64"], role="verifier")
    # --force regenerates current keys
    old_vk = vk_path.read_bytes()
    assert main(["setup", "--keys", str(d), "--circuits", "q_64", "--force"]) == 0
    assert "created" in capsys.readouterr().out
    assert vk_path.read_bytes() != old_vk
    assert read_manifest(d)["q_64"]["digest"] == compile_circuit("q_64").digest().hex()
    assert main(["setup", "--keys", str(d), "--circuits", "nope"]) == 1


@pytest.mark.parametrize(
    "name", ["co_chacha20", "co_aes128gcm", "pad_block", "pad_blocks_3", "q_64", "q_448"]
)
def test_statements_keep_their_product_rows(name):
    """Every statement's witness program evaluates each product row on final wire values, so the stub's
    proofs take the solver's A and B values of those rows instead of evaluating them again."""
    from zkmb.r1cs.system import _keeps_rows

    cs = compile_circuit(name)
    assert _keeps_rows(cs, cs.n_secret_inputs)
