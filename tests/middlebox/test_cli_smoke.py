"""`zkmb middlebox` as a separate process: starts from a key dir and a policy file, publishes the root,
keys and metrics, reloads the policy on SIGHUP (rotating the root), and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from zkmb.policy.policyfile import build_policy


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as r:  # loopback only
        return r.read()


def _policy(tmp: Path, names: list[str], out: str):
    src = tmp / f"{out}.txt"
    src.write_text("\n".join(names) + "\n")
    policy, _, _ = build_policy([str(src)])
    policy.write(tmp / out)
    return policy


@pytest.fixture(scope="module")
def keydir() -> Path:
    """A key set the middlebox can enforce with (CO, PAD, Q for ChaCha20): the demo's, generated on
    first use (~1 min, CO setup); a directory without CO is refused at start."""
    from zkmb.client_stub.demo import default_state_dir, prepare_keys

    return prepare_keys(
        default_state_dir(), ("co_chacha20", "pad_block", "q_64"), out=lambda s: None, check=False
    )


def test_middlebox_command_serves_and_stops(keydir, tmp_path):
    first = _policy(tmp_path, ["evil.example", "bad.test"], "policy.zkmbp")
    relay, proofs, publish = _free_ports(3)
    cmd = [
        sys.executable, "-m", "zkmb.cli", "middlebox",
        "--listen", f"127.0.0.1:{relay}", "--proof-listen", f"127.0.0.1:{proofs}",
        "--upstream", "127.0.0.1:9", "--keys", str(keydir), "--key-check", "manifest",
        "--policy", str(tmp_path / "policy.zkmbp"), "--publish", f"127.0.0.1:{publish}",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{publish}"
        deadline = time.monotonic() + 60
        while True:
            try:
                root = json.loads(_get(f"{base}/root"))
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"middlebox did not come up: {proc.stdout.read()}") from None
                time.sleep(0.3)
        assert int(root["root"], 16) == first.root
        assert root["rules"] == 2
        assert (root["mode"], root["co_deadline_ms"], root["record_deadline_ms"]) == ("strict", 20_000, 2_000)
        assert _get(f"{base}/policy") == (tmp_path / "policy.zkmbp").read_bytes()
        manifest = json.loads(_get(f"{base}/keys/manifest.json"))
        assert "q_64" in json.dumps(manifest)
        assert _get(f"{base}/keys/q_64.vk") == (keydir / "q_64.vk").read_bytes()
        assert b"zkmb_active_flows" in _get(f"{base}/metrics")
        with pytest.raises(urllib.error.HTTPError):
            _get(f"{base}/keys/..%2fmanifest.json")

        # a policy update: SIGHUP reloads, the previous root stays valid for the grace window
        second = _policy(tmp_path, ["evil.example", "bad.test", "worse.test"], "policy.zkmbp")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while int(json.loads(_get(f"{base}/root"))["root"], 16) != second.root:
            assert time.monotonic() < deadline, "SIGHUP did not rotate the root"
            time.sleep(0.3)
        rotated = json.loads(_get(f"{base}/root"))
        assert int(rotated["previous"], 16) == first.root

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
