"""Bridge mode in real network namespaces (root, iptables, NFQUEUE): scripts/bridge-setup.sh topology,
the embedded resolver in zkmb-resolver, the Bridge (stand-in proofs) in zkmb-bridge, zkmb.tls clients in
zkmb-client.  Every process and command is bounded by a timeout; the namespaces are removed even on failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import require

REPO = Path(__file__).resolve().parents[2]
QUEUE = "7"


def _can_run() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "bridge namespace test needs root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return False, f"bridge namespace test needs `{tool}` (apt: iproute2, iptables)"
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        return False, "bridge namespace test needs netfilterqueue (pip; apt libnetfilter-queue-dev to build)"
    if not Path("/proc/net/netfilter/nfnetlink_queue").exists():
        return False, "kernel without nfnetlink_queue"
    return True, ""


def _sh(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def _role(ns: str, log: Path, *args: str, limit: int = 90, ready_s: float = 30) -> subprocess.Popen:
    """Start a role in namespace ``ns`` (its output to ``log``, killed after ``limit`` s) and wait up to
    ``ready_s`` until it prints READY."""
    cmd = ["ip", "netns", "exec", ns, "timeout", str(limit), sys.executable]
    cmd += ["-m", "tests.middlebox.netns_roles"]
    with open(log, "w") as f:
        p = subprocess.Popen([*cmd, *args], cwd=REPO, stdout=f, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + ready_s
    while time.time() < deadline and p.poll() is None:
        if "READY" in log.read_text():
            return p
        time.sleep(0.05)
    _stop(p)
    raise AssertionError(f"{args[0]} not ready: {log.read_text()}")


def _stop(p: subprocess.Popen) -> None:
    p.terminate()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=5)


@pytest.fixture(scope="module")
def bridge_net(tmp_path_factory):
    ok, why = _can_run()
    require(ok, why)
    from zkmb.resolver.certs import make_self_signed, write_pair

    cert, key = write_pair(tmp_path_factory.mktemp("bridge-certs"), *make_self_signed(ips=("10.253.0.2",)))
    _sh(str(REPO / "scripts/bridge-teardown.sh"))
    procs: list[subprocess.Popen] = []
    logdir = tmp_path_factory.mktemp("bridge-logs")
    try:
        r = _sh(str(REPO / "scripts/bridge-setup.sh"), QUEUE)
        assert r.returncode == 0, r.stderr
        procs.append(_role("zkmb-resolver", logdir / "resolver.log", "resolver", str(cert), str(key)))
        procs.append(_role("zkmb-bridge", logdir / "bridge.log", "bridge", QUEUE, "2.0"))
        yield cert, logdir / "bridge.log"
    finally:
        for p in procs:
            if p.poll() is None:
                _stop(p)
        _sh(str(REPO / "scripts/bridge-teardown.sh"))


def _wait_log(log: Path, text: str, timeout: float = 5) -> str:
    deadline = time.time() + timeout
    while text not in log.read_text() and time.time() < deadline:
        time.sleep(0.05)
    return log.read_text()


def _client(role: str, cert) -> str:
    r = subprocess.run(
        ["ip", "netns", "exec", "zkmb-client", "timeout", "40", sys.executable, "-m"]
        + ["tests.middlebox.netns_roles", role, str(cert)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_proofless_client_gets_nothing_past_the_bridge_plain_tcp_untouched(bridge_net):
    cert, log = bridge_net
    out = _client("client_noproof", cert)
    assert "ECHO plain tcp" in out  # port 7007 is never queued
    assert "HANDSHAKE ok" in out  # the handshake is admitted (SPEC §2)
    assert "BLOCKED" in out and "ANSWER" not in out
    text = _wait_log(log, "what=tcp action=reset")
    assert "action=hold reason=awaiting_proof" in text
    assert "action=block reason=no_valid_Q_proof_by_the_deadline" in text
    assert "what=tcp action=reset" in text


def test_client_with_proofs_gets_its_answer_through(bridge_net):
    cert, log = bridge_net
    out = _client("client_proofs", cert)
    assert "ANSWER www.example.test. 300 IN A 192.0.2.1" in out
    assert "action=forward reason=verified" in _wait_log(log, "reason=verified")
