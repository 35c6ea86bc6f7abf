"""Bridge mode over two NFQUEUEs (``--queue-balance``): one verifier process per queue behind one proof
endpoint (zkmb.middlebox.multiqueue), in real network namespaces, stand-in proofs.  The kernel hashes
the address pair to pick the queue, so the client uses several source addresses until both queues
have carried a verified flow."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from ..conftest import require
from .test_bridge_netns import REPO, _can_run, _role, _sh, _stop, _wait_log

QUEUES = "5:6"
SOURCES = [f"10.253.0.{i}" for i in range(10, 26)]


@pytest.fixture(scope="module")
def multi_net(tmp_path_factory):
    ok, why = _can_run()
    require(ok, why)
    from zkmb.resolver.certs import make_self_signed, write_pair

    cert, key = write_pair(tmp_path_factory.mktemp("mq-certs"), *make_self_signed(ips=("10.253.0.2",)))
    _sh(str(REPO / "scripts/bridge-teardown.sh"))
    procs: list[subprocess.Popen] = []
    logdir = tmp_path_factory.mktemp("mq-logs")
    try:
        r = _sh(str(REPO / "scripts/bridge-setup.sh"), QUEUES)
        assert r.returncode == 0, r.stderr
        rules = _sh("ip", "netns", "exec", "zkmb-bridge", "iptables", "-S", "FORWARD").stdout
        assert "--queue-balance 5:6" in rules, rules
        for src in SOURCES:
            _sh("ip", "-n", "zkmb-client", "addr", "add", f"{src}/24", "dev", "zc0")
        procs.append(_role("zkmb-resolver", logdir / "resolver.log", "resolver", str(cert), str(key)))
        procs.append(_role("zkmb-bridge", logdir / "bridge.log", "bridge_multi", QUEUES, "5.0"))
        yield cert, logdir / "bridge.log"
    finally:
        for p in procs:
            if p.poll() is None:
                _stop(p)
        _sh(str(REPO / "scripts/bridge-teardown.sh"))


def test_two_queues_two_processes_both_verify(multi_net):
    cert, log = multi_net
    verified: dict[str, int] = {}
    for src in SOURCES:
        r = subprocess.run(
            ["ip", "netns", "exec", "zkmb-client", "timeout", "40", sys.executable, "-m"]
            + ["tests.middlebox.netns_roles", "client_proofs_from", str(cert), src],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "ANSWER www.example.test. 300 IN A 192.0.2.1" in r.stdout
        text = _wait_log(log, "reason=verified")
        verified = {}
        for q in re.findall(r" q(\d+) flow=\d+ what=record n=0 len=\S+ action=forward reason=verified", text):
            verified[q] = verified.get(q, 0) + 1
        if len(verified) == 2:
            break
    text = log.read_text()
    assert set(verified) == {"5", "6"}, (verified, text[-3000:])
    assert sum(verified.values()) >= 2
    assert text.count("action=handed_over") >= 2
