"""The verification pool (batches, fallback, overload), the publishing endpoint and the metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request

import pytest
from zkmb.middlebox.metrics import Metrics
from zkmb.middlebox.publish import HttpServer, Publisher
from zkmb.middlebox.verifier import PolicyRoots, Verifier, protocol_name, registry_name
from zkmb.middlebox.workers import FlowVerifier, VerifyPool

from zkmb.errors import InvalidInput
from zkmb.policy import Kind, Rule, normalise, policy_from_rules
from zkmb.policy.rules import name_key

from .conftest import NAMES, ROOT, FakeProof, fake_check


def test_name_mapping():
    assert registry_name("pad_chacha20") == "pad_block"
    assert protocol_name("pad_block_aes128gcm") == "pad_aes128gcm"
    assert protocol_name("q_64") == "q_64"
    with pytest.raises(InvalidInput):
        registry_name("pad_block")


def _verifier(batches):
    def batch_check(vk, items):
        batches.append(len(items))
        return all(fake_check(vk, pub, proof) for pub, proof in items)

    return Verifier({n: n for n in NAMES}, PolicyRoots(ROOT), check=fake_check, batch_check=batch_check)


def test_pool_batches_and_isolates_a_bad_proof():
    batches: list[int] = []
    metrics = Metrics()

    async def run():
        pool = VerifyPool(_verifier(batches), workers=1, on_verdict=metrics.verdict)
        got = {}
        woke = asyncio.Event()
        fv = FlowVerifier(pool, woke.set)
        jobs = [(i, FakeProof("q_64", (i,)) if i != 3 else FakeProof("q_64", (99,))) for i in range(6)]
        for i, proof in jobs:
            assert fv.verify("q_64", [i], proof) is None
        assert fv.verify("q_64", [0], jobs[0][1]) is None  # already queued: still pending, not requeued
        while len(got) < 6:
            await woke.wait()
            woke.clear()
            for i, proof in jobs:
                if i not in got:
                    v = fv.verify("q_64", [i], proof)
                    if v is not None:
                        got[i] = v
        pool.close()
        return got

    got = asyncio.run(run())
    assert got == {0: True, 1: True, 2: True, 3: False, 4: True, 5: True}
    assert any(b > 1 for b in batches)  # waiting proofs of one circuit went as a batch
    text = metrics.render()
    assert 'zkmb_proofs_total{circuit="q_64",result="failed"} 1' in text
    assert 'zkmb_proofs_total{circuit="q_64",result="verified"} 5' in text


def test_pool_overload_drops_with_reason():
    async def run():
        pool = VerifyPool(_verifier([]), workers=1, max_queue=1)
        fv = FlowVerifier(pool, lambda: None)
        results = [fv.verify("q_64", [i], FakeProof("q_64", (i,))) for i in range(4)]
        pool.close()
        return results, fv.refusal

    results, refusal = asyncio.run(run())
    assert False in results and "overloaded" in refusal


@pytest.fixture
def policy_file(tmp_path):
    def write(names):
        rs = [Rule(name_key(n), Kind.EXACT, n, "t", i + 1) for i, n in enumerate(names)]
        pol = policy_from_rules(normalise(rs))
        path = tmp_path / "policy.txt"
        pol.write(path)
        return path, pol

    return write


def test_publish_endpoint_and_reload(tmp_path, policy_file):
    path, pol = policy_file(["evil.com"])
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "q_64.vk").write_bytes(b"vk bytes")
    (keys / "q_64.pk").write_bytes(b"pk" * 100_000)
    (keys / "srs.bin").write_bytes(b"srs" * 1000)
    (keys / "q_64.bin").write_bytes(b"not published")
    roots = PolicyRoots(pol.root)
    rotated = []
    metrics = Metrics()

    def on_rotate(root):
        roots.rotate(root, 0.0)
        rotated.append(root)

    pub = Publisher(path, keys, on_rotate=on_rotate, grace=lambda: (roots.previous, roots.grace))

    async def run():
        http = HttpServer(pub, metrics)
        port = await http.start("127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}"

        def get(p):
            try:
                with urllib.request.urlopen(base + p, timeout=5) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, b""

        out = {}
        for p in (
            "/root",
            "/policy",
            "/keys/manifest.json",
            "/keys/q_64.vk",
            "/keys/q_64.pk",
            "/keys/srs.bin",
            "/keys/q_64.bin",
            "/keys/srs.pk",
            "/metrics",
            "/keys/../policy.vk",
            "/keys/nope.vk",
            "/nothing",
        ):
            out[p] = await asyncio.to_thread(get, p)
        path2, pol2 = policy_file(["evil.com", "worse.org"])
        pub.reload_policy(path2)
        out["root2"] = await asyncio.to_thread(get, "/root")
        await http.close()
        return out, pol2

    out, pol2 = asyncio.run(run())
    root = json.loads(out["/root"][1])
    assert root == {
        "root": f"0x{pol.root:064x}",
        "version": 1,
        "rules": 1,
        "previous": None,
        "grace_s": 600.0,
    }
    assert out["/policy"] == (200, path.read_bytes()) or out["/policy"][0] == 200
    manifest = json.loads(out["/keys/manifest.json"][1])
    assert manifest["q_64"]["pk"]["bytes"] == 200_000
    assert out["/keys/q_64.vk"] == (200, b"vk bytes")
    assert out["/keys/q_64.pk"] == (200, b"pk" * 100_000)
    assert out["/keys/srs.bin"] == (200, b"srs" * 1000)
    assert manifest["srs"] == {
        "file": "srs.bin",
        "bytes": 3000,
        "sha256": hashlib.sha256(b"srs" * 1000).hexdigest(),
    }
    assert out["/keys/q_64.bin"][0] == out["/keys/srs.pk"][0] == 404  # only srs.bin, only as .bin
    assert out["/metrics"][0] == 200 and b"zkmb_proofs_total" in out["/metrics"][1]
    assert [out[p][0] for p in ("/keys/../policy.vk", "/keys/nope.vk", "/nothing")] == [404, 404, 404]
    root2 = json.loads(out["root2"][1])
    assert root2["version"] == 2 and root2["rules"] == 2 and root2["previous"] == f"0x{pol.root:064x}"
    assert rotated == [pol2.root] and roots.acceptable(1.0) == [pol2.root, pol.root]
