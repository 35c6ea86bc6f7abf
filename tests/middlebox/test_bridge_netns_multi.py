"""Bridge mode over two NFQUEUEs (``--queue-balance``): one verifier process per queue behind one proof
endpoint (zkmb.middlebox.multiqueue), in real network namespaces, stand-in proofs.  The kernel hashes
the address pair to pick the queue, so the client uses several source addresses until both queues
have carried a verified flow."""

from __future__ import annotations

import re
import subprocess
import sys
import time

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


def test_replayed_client_hello_refused_on_another_queue(multi_net):
    """SPEC §2 across queues: a ClientHello seen on one queue and replayed from another address that
    the kernel puts on the other queue is refused there (each child had its own seen-random set)."""
    cert, log = multi_net
    first_src = SOURCES[0]
    for src in SOURCES[1:]:
        before = len(log.read_text())
        r = subprocess.run(
            ["ip", "netns", "exec", "zkmb-client", "timeout", "30", sys.executable, "-m"]
            + ["tests.middlebox.netns_roles", "client_replay", str(cert), first_src, src],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=45,
            check=False,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        got = dict(re.findall(r"^(FIRST|REPLAY) got (\d+)$", r.stdout, re.M))
        ports = dict(re.findall(r"^(FIRST|REPLAY) port (\d+)$", r.stdout, re.M))
        assert int(got["FIRST"]) > 0, r.stdout  # the resolver answered the original ClientHello
        deadline = time.time() + 5
        while "random_already_seen" not in log.read_text()[before:] and time.time() < deadline:
            time.sleep(0.05)
        text = log.read_text()[before:]
        q_first = re.search(rf" q(\d+) flow=\d+ what=syn client={first_src}:{ports['FIRST']} ", text)
        q_replay = re.search(rf" q(\d+) flow=(\d+) what=syn client={src}:{ports['REPLAY']} ", text)
        assert q_first and q_replay, text[-3000:]
        refused = re.search(
            rf" q{q_replay.group(1)} flow={q_replay.group(2)} what=client_hello .*action=block "
            r"reason=ClientHello_random_already_seen_on_another_connection",
            text,
        )
        assert refused, text[-3000:]
        assert int(got["REPLAY"]) == 0, r.stdout  # nothing reached the resolver, nothing came back
        if q_first.group(1) != q_replay.group(1):
            return  # refused on the other queue: the set is shared
    pytest.fail("no source address put the replay on the other queue")
