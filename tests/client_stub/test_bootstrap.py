"""Bootstrapping the stub from a real publishing endpoint on loopback: download and verify, cache reuse,
a tampered policy refused, a root rotation noticed."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest
from zkmb.circuits.keys import generate_keys, load_keys
from zkmb.client_stub.bootstrap import (
    BootstrapError,
    bootstrap,
    check_rotation,
    fetch_root,
    watch_rotation,
)
from zkmb.middlebox.publish import HttpServer, Publisher

from zkmb.policy import Kind, Rule, load_policy, normalise, policy_from_rules
from zkmb.policy.rules import name_key

NAMES = ["pad_block", "q_64"]


@pytest.fixture(scope="module")
def keydir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    generate_keys(d, NAMES)
    return d


@pytest.fixture(autouse=True)
def tree_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZKMB_CACHE_DIR", str(tmp_path / "tree-cache"))


def _write_policy(path: Path, names: list[str]):
    rules = [Rule(name_key(n), Kind.EXACT, n, "t", i + 1) for i, n in enumerate(names)]
    pol = policy_from_rules(normalise(rules))
    pol.write(path)
    return pol


class _CountingServer(HttpServer):
    """Counts requests per path and records the byte spans it served; ``cut`` = {path: n} sends only
    the first n bytes of that path's body once, then closes (an interrupted download)."""

    def __init__(self, publisher):
        super().__init__(publisher)
        self.requests: Counter[str] = Counter()
        self.spans: list[tuple[str, object]] = []
        self.cut: dict[str, int] = {}
        self._path = ""

    def _route(self, path):
        self.requests[path] += 1
        self._path = path
        return super()._route(path)

    async def _send(self, writer, status, ctype, body, *, head, span=None, extra=""):
        self.spans.append((self._path, span))
        n = self.cut.pop(self._path, None)
        if n is not None and isinstance(body, Path):
            size = body.stat().st_size
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode()
                + body.read_bytes()[:n]
            )
            await writer.drain()
            return
        await super()._send(writer, status, ctype, body, head=head, span=span, extra=extra)


@pytest.fixture
def endpoint(tmp_path, keydir):
    """``(base_url, publisher, server)`` with the endpoint served from a background event loop."""
    policy_path = tmp_path / "policy.zkmbp"
    _write_policy(policy_path, ["evil.example", "ads.test"])
    pub = Publisher(policy_path, keydir)
    server = _CountingServer(pub)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}", pub, server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_bootstrap_downloads_verifies_and_caches(endpoint, tmp_path, keydir, capsys):
    url, pub, server = endpoint
    state = tmp_path / "state"
    stats: dict = {}
    policy_path, key_dir = bootstrap(url, state, NAMES, stats=stats)
    assert load_policy(policy_path).root == pub.root
    assert policy_path.name == f"{pub.root:064x}.zkmbp"
    for name in NAMES:
        for ext in ("pkc", "vk"):
            assert (key_dir / f"{name}.{ext}").read_bytes() == (keydir / f"{name}.{ext}").read_bytes()
        assert server.requests[f"/keys/{name}.pkc"] == 1 and server.requests[f"/keys/{name}.pk"] == 0
        # the decompressed cache holds the same key as the setup's full file
        mine, theirs = (load_keys(d, [name], "prover")[name] for d in (key_dir, keydir))
        assert all(bytes(getattr(mine, k)) == bytes(getattr(theirs, k)) for k in ("a", "b2", "h"))
    assert server.requests["/keys/srs.bin"] == 0
    err = capsys.readouterr().err
    assert "fetched pad_block.pkc" in err and "MiB/s" in err  # progress with size and rate
    assert "decompressing the pad_block proving key" in err
    served = [p for p in keydir.iterdir() if p.suffix in (".pkc", ".vk", ".srsc")]
    assert stats["download_bytes"] == stats["policy_bytes"] + sum(p.stat().st_size for p in served)

    assert set(load_keys(key_dir, NAMES, "verifier", against="manifest")) == set(NAMES)

    before = server.requests.copy()
    again = bootstrap(url, state, NAMES)
    assert again == (policy_path, key_dir)
    new = server.requests - before
    assert not any(p.startswith("/keys/") and p != "/keys/manifest.json" for p in new), new
    assert new["/policy"] == 0  # the cached policy for the published root is reused
    assert "fetching" not in capsys.readouterr().err

    # a corrupted cached key file (same size) is noticed and fetched again
    vk = key_dir / "q_64.vk"
    data = bytearray(vk.read_bytes())
    data[40] ^= 1
    vk.write_bytes(bytes(data))
    before = server.requests.copy()
    bootstrap(url, state, NAMES, progress=None)
    assert (server.requests - before)["/keys/q_64.vk"] == 1
    assert vk.read_bytes() == (keydir / "q_64.vk").read_bytes()


def test_tampered_policy_is_refused(endpoint, tmp_path):
    url, pub, _ = endpoint
    good = pub.policy_bytes
    # 1. bytes changed: the rules no longer hash to the root the file states
    pub.policy_bytes = good.replace(b"evil.example", b"evil.exampla")
    with pytest.raises(BootstrapError, match="refused the policy"):
        bootstrap(url, tmp_path / "s1", NAMES, progress=None)
    # 2. a self-consistent policy for other rules: its root differs from the published one
    other = _write_policy(tmp_path / "other.zkmbp", ["only.this.test"])
    pub.policy_bytes = (tmp_path / "other.zkmbp").read_bytes()
    with pytest.raises(BootstrapError, match=f"publishes 0x{pub.root:064x}"):
        bootstrap(url, tmp_path / "s2", NAMES, progress=None)
    assert other.root != pub.root
    for s in ("s1", "s2"):
        assert not list((tmp_path / s / "policy").glob("*.zkmbp"))  # nothing refused was kept


def test_root_rotation_is_noticed(endpoint, tmp_path):
    url, pub, _ = endpoint
    state = tmp_path / "state"
    policy_path, _ = bootstrap(url, state, NAMES, progress=None)
    old = load_policy(policy_path).root
    assert check_rotation(url, old) is None
    _write_policy(tmp_path / "policy2.zkmbp", ["evil.example", "ads.test", "new.bad.test"])
    new_root = pub.reload_policy(tmp_path / "policy2.zkmbp")
    assert new_root != old
    assert check_rotation(url, old) == new_root
    assert fetch_root(url)["version"] == 2
    path2, _ = bootstrap(url, state, NAMES, progress=None)
    assert load_policy(path2).root == new_root and path2 != policy_path


def test_watch_rotation_hands_over_the_new_policy(endpoint, tmp_path):
    url, pub, _ = endpoint
    state = tmp_path / "state"
    policy_path, _ = bootstrap(url, state, NAMES, progress=None)
    old = load_policy(policy_path).root
    _write_policy(tmp_path / "policy2.zkmbp", ["evil.example", "other.bad.test"])

    async def run():
        got = []
        task = asyncio.ensure_future(watch_rotation(url, state, old, got.append, interval=0.05))
        await asyncio.sleep(0.2)
        assert got == []
        pub.reload_policy(tmp_path / "policy2.zkmbp")
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        return got

    got = asyncio.run(run())
    assert len(got) == 1 and got[0].root == pub.root != old


def test_bad_urls_and_unreachable_endpoint(tmp_path):
    with pytest.raises(BootstrapError, match="http"):
        bootstrap("file:///etc/passwd", tmp_path)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(BootstrapError):
        check_rotation(f"http://127.0.0.1:{port}", 0, timeout=2)


def test_unknown_key_name_refused(endpoint, tmp_path):
    url, _, _ = endpoint
    with pytest.raises(BootstrapError, match="q_128"):
        bootstrap(url, tmp_path / "s", ["q_128"], progress=None)


# ------------------------------------------------------------------------------ keys against the SRS


def _served_copy(tmp_path: Path, keydir: Path, names=NAMES) -> Path:
    """A copy of ``keydir`` the test may tamper with (the module's key pair stays intact)."""
    import shutil

    d = tmp_path / "served-keys"
    shutil.copytree(keydir, d)
    return d


def _serve(tmp_path: Path, key_dir: Path):
    policy_path = tmp_path / "policy2.zkmbp"
    _write_policy(policy_path, ["evil.example"])
    server = HttpServer(Publisher(policy_path, key_dir))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

    return f"http://127.0.0.1:{port}", stop


def test_bootstrap_checks_keys_against_the_srs_and_caches_the_verdict(endpoint, tmp_path, capsys):
    url, _, server = endpoint
    state = tmp_path / "state"
    _, key_dir = bootstrap(url, state, NAMES)  # default: progress on stderr
    parts = sorted(p.name for p in key_dir.glob("srs_*.srsc"))
    assert parts and all(server.requests[f"/keys/{p}"] == 1 for p in parts)
    assert not (key_dir / "srs.bin").exists() and server.requests["/keys/srs.bin"] == 0
    err = capsys.readouterr().err
    assert all(f"checking the {n} proving key against the SRS" in err for n in NAMES)
    cached = list((state / "keycheck").iterdir())
    assert cached, "a positive verdict is cached"
    bootstrap(url, state, NAMES)
    assert all(server.requests[f"/keys/{p}"] == 1 for p in parts)  # reused, not downloaded again
    assert "key cached" in capsys.readouterr().err


def test_bootstrap_downloads_only_what_it_uses(endpoint, tmp_path):
    """A stub that uses q_64 only fetches q_64's files and the SRS parts below its 2^13 domain."""
    url, _, server = endpoint
    _, key_dir = bootstrap(url, tmp_path / "state", ["q_64"], progress=None)
    fetched = {p.rsplit("/", 1)[1] for p, n in server.requests.items() if p.startswith("/keys/") and n}
    assert fetched == {"manifest.json", "q_64.vk", "q_64.pkc", "srs_0.srsc", "srs_1.srsc"}
    assert sorted(p.name for p in key_dir.glob("srs_*")) == ["srs_0.srsc", "srs_1.srsc"]


def _kdir(url: str, state: Path) -> Path:
    import hashlib
    import urllib.request

    with urllib.request.urlopen(url + "/keys/manifest.json", timeout=5) as r:
        return state / "keys" / hashlib.sha256(r.read()).hexdigest()[:16]


def test_interrupted_download_resumes(endpoint, tmp_path, keydir):
    """The connection drops after 1 MiB of pad_block.pkc: the bootstrap fails saying so and keeps the
    partial file; the next one asks for the rest only (Range) and the key is whole and checked."""
    url, _, server = endpoint
    state = tmp_path / "state"
    server.cut["/keys/pad_block.pkc"] = 1 << 20
    with pytest.raises(BootstrapError, match="run again to resume"):
        bootstrap(url, state, NAMES, progress=None)
    part = _kdir(url, state) / "pad_block.pkc.part"
    assert part.stat().st_size == 1 << 20
    server.spans.clear()
    _, key_dir = bootstrap(url, state, NAMES, progress=None)
    size = (keydir / "pad_block.pkc").stat().st_size
    assert ("/keys/pad_block.pkc", (1 << 20, size - 1)) in server.spans
    assert (key_dir / "pad_block.pkc").read_bytes() == (keydir / "pad_block.pkc").read_bytes()
    assert not part.exists()


def test_corrupt_partial_file_is_fetched_again(endpoint, tmp_path, keydir, caplog):
    """A .part whose bytes are not the file's prefix: the resumed file fails its digest, so it is fetched
    once more from the start (never accepted)."""
    url, _, server = endpoint
    state = tmp_path / "state"
    kdir = _kdir(url, state)
    kdir.mkdir(parents=True)
    (kdir / "q_64.pkc.part").write_bytes(b"\xff" * 5000)
    _, key_dir = bootstrap(url, state, NAMES, progress=None)
    size = (keydir / "q_64.pkc").stat().st_size
    assert [s for p, s in server.spans if p == "/keys/q_64.pkc"] == [(5000, size - 1), None]
    assert "digest mismatch after resuming" in caplog.text
    assert (key_dir / "q_64.pkc").read_bytes() == (keydir / "q_64.pkc").read_bytes()


def test_digest_mismatch_refused(tmp_path, keydir):
    """A served file that is not the one the manifest describes (same size, other bytes) is refused, and
    nothing of it is kept."""
    d = _served_copy(tmp_path, keydir)
    raw = bytearray((d / "q_64.pkc").read_bytes())
    raw[-10] ^= 1
    (d / "q_64.pkc").write_bytes(bytes(raw))
    url, stop = _serve(tmp_path, d)
    try:
        state = tmp_path / "state"
        with pytest.raises(BootstrapError, match="q_64.pkc: sha256 .* differs from the manifest's.*refused"):
            bootstrap(url, state, NAMES, progress=None)
        kdir = _kdir(url, state)
        assert not (kdir / "q_64.pkc").exists() and not (kdir / "q_64.pkc.part").exists()
    finally:
        stop()


def test_manifest_without_compact_files_refused(tmp_path, keydir):
    import json

    d = _served_copy(tmp_path, keydir)
    m = json.loads((d / "manifest.json").read_text())
    del m["circuits"]["q_64"]["pkc_file"]
    (d / "manifest.json").write_text(json.dumps(m))
    url, stop = _serve(tmp_path, d)
    try:
        with pytest.raises(BootstrapError, match="q_64 has no compact proving key"):
            bootstrap(url, tmp_path / "state", NAMES, progress=None)
    finally:
        stop()


def _publish_pk(d: Path, name: str, pk, monkeypatch=None) -> None:
    """Serve ``pk`` as NAME.pkc with a manifest that describes it (a middlebox publishing a bad key)."""
    import hashlib
    import json

    from zkmb.groth16 import compact

    path = d / f"{name}.pkc"
    if monkeypatch is not None:  # let the writer emit points at infinity where the format forbids them
        with monkeypatch.context() as m:
            m.setattr(compact, "_SINGLE", set())
            compact.write_compact_pk(pk, path)
    else:
        compact.write_compact_pk(pk, path)
    m = json.loads((d / "manifest.json").read_text())
    m["circuits"][name]["pkc_bytes"] = path.stat().st_size
    m["circuits"][name]["pkc_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(m))


def test_stub_refuses_a_malformed_proving_key(tmp_path, keydir, monkeypatch):
    """delta = 0 in the published key (the prover's blinding would vanish), with the right circuit
    digest: the compact format cannot even carry it (infinity), so decompression refuses it."""
    from dataclasses import replace

    import numpy as np
    from zkmb.circuits.keys import KeyMismatch, key_paths

    from zkmb.groth16.keys import ProvingKey

    d = _served_copy(tmp_path, keydir)
    pk = ProvingKey.load(key_paths(d, "q_64")[0])
    bad = replace(
        pk, delta_1=np.zeros_like(pk.delta_1), vk=replace(pk.vk, delta_2=np.zeros_like(pk.vk.delta_2))
    )
    _publish_pk(d, "q_64", bad, monkeypatch)
    url, stop = _serve(tmp_path, d)
    try:
        with pytest.raises(KeyMismatch, match="q_64: refused .*q_64.pkc: .*delta_1 has 0 of 1 points"):
            bootstrap(url, tmp_path / "state", NAMES, progress=None)
    finally:
        stop()


def test_stub_refuses_a_key_whose_vk_differs(tmp_path, keydir):
    """NAME.vk served beside NAME.pkc from another setup of the circuit: refused (vk vs pk)."""
    import hashlib
    import json
    import shutil

    from zkmb.groth16.keycheck import KeyCheckFailed

    other = tmp_path / "other"
    generate_keys(other, ["q_64"])
    d = _served_copy(tmp_path, keydir)
    shutil.copy(other / "q_64.vk", d / "q_64.vk")
    m = json.loads((d / "manifest.json").read_text())
    m["circuits"]["q_64"]["vk_sha256"] = hashlib.sha256((d / "q_64.vk").read_bytes()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(m))
    url, stop = _serve(tmp_path, d)
    try:
        with pytest.raises(KeyCheckFailed, match="q_64.vk is not the verifying key inside"):
            bootstrap(url, tmp_path / "state", NAMES, progress=None)
    finally:
        stop()


def test_stub_refuses_a_key_with_a_swapped_element(tmp_path, keydir):
    from dataclasses import replace

    from zkmb.circuits.keys import key_paths

    from zkmb.groth16.keycheck import KeyCheckFailed
    from zkmb.groth16.keys import ProvingKey

    d = _served_copy(tmp_path, keydir)
    pk_path, _ = key_paths(d, "pad_block")
    pk = ProvingKey.load(pk_path)
    h = pk.h.copy()
    h[[0, 1]] = h[[1, 0]]
    _publish_pk(d, "pad_block", replace(pk, h=h))
    url, stop = _serve(tmp_path, d)
    try:
        with pytest.raises(KeyCheckFailed, match="pad_block"):
            bootstrap(url, tmp_path / "state", NAMES, progress=None)
    finally:
        stop()


def test_stub_refuses_keys_without_a_published_srs(tmp_path, keydir):
    import json

    d = _served_copy(tmp_path, keydir)
    (d / "srs.bin").unlink()
    m = json.loads((d / "manifest.json").read_text())
    m.pop("srs", None)
    (d / "manifest.json").write_text(json.dumps(m))
    url, stop = _serve(tmp_path, d)
    try:
        with pytest.raises(BootstrapError, match="publishes no SRS"):
            bootstrap(url, tmp_path / "state", NAMES, progress=None)
        # explicitly opting out (a development setting) still bootstraps
        _, key_dir = bootstrap(url, tmp_path / "state2", NAMES, progress=None, verify=False)
        assert (key_dir / "q_64.pk").is_file()
    finally:
        stop()


def test_stub_cli_refuses_local_keys_it_cannot_check(tmp_path, keydir):
    """``zkmb stub --keys DIR`` runs the same SRS check as a bootstrap: without srs.bin it stops with
    the reason before opening anything."""
    import subprocess
    import sys

    d = _served_copy(tmp_path, keydir)
    (d / "srs.bin").unlink()
    for p in d.glob("srs_*.srsc"):
        p.unlink()
    policy = tmp_path / "p.zkmbp"
    _write_policy(policy, ["evil.example"])
    cmd = [sys.executable, "-c", "from zkmb.cli import main; raise SystemExit(main())", "stub"]
    cmd += ["--relay", "127.0.0.1:9", "--proof", "127.0.0.1:9", "--server-name", "localhost"]
    cmd += ["--policy", str(policy), "--keys", str(d), "--sizes", "64", "--port", "0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode != 0
    assert "srs.bin" in r.stderr, r.stderr
