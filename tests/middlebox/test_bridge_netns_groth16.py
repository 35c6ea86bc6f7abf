"""Bridge mode with REAL Groth16 proofs in network namespaces: unbound (DoT) in zkmb-resolver, two
verifier processes (``--queue-balance 3:4``, zkmb.middlebox.multiqueue) verifying with the demo's keys
in zkmb-bridge, and in zkmb-client a zkmb.tls DoT client proving CO / PAD / Q with the stub's
Groth16Prover.  The allowed query gets its answer; a client without proofs gets nothing past the
bridge; non-853 TCP passes untouched."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from zkmb.client_stub.demo import DEMO_CIRCUITS

from ..conftest import require
from .test_bridge_netns import REPO, _can_run, _role, _sh, _stop

pytestmark = pytest.mark.slow
QUEUES = "3:4"
KEYS = DEMO_CIRCUITS  # the demo's own set (tests/interop/resolvers.py::KEYS says why)


@pytest.fixture(scope="module")
def real_net(tmp_path_factory):
    ok, why = _can_run()
    require(ok, why)
    require(shutil.which("unbound") is not None, "the real-proof bridge test needs unbound (apt: unbound)")
    from zkmb.client_stub.demo import default_state_dir, prepare_keys

    from zkmb.resolver.certs import make_self_signed, write_pair

    # cached after the first run; the SRS key check is the demo test's (tests/client_stub/test_demo_e2e.py)
    key_dir = prepare_keys(default_state_dir(), KEYS, out=lambda s: None, check=False)
    work = tmp_path_factory.mktemp("real-bridge")
    work.chmod(0o755)
    cert, key = write_pair(work, *make_self_signed(ips=("10.253.0.2",)))
    _sh(str(REPO / "scripts/bridge-teardown.sh"))
    procs: list[subprocess.Popen] = []
    try:
        r = _sh(str(REPO / "scripts/bridge-setup.sh"), QUEUES)
        assert r.returncode == 0, r.stderr
        args = ("unbound", str(cert), str(key), str(work))
        procs.append(_role("zkmb-resolver", work / "resolver.log", *args, limit=240))
        args = ("bridge_real", QUEUES, str(key_dir))
        procs.append(_role("zkmb-bridge", work / "bridge.log", *args, limit=240, ready_s=120))
        yield cert, key_dir, work / "bridge.log"
    finally:
        for p in procs:
            if p.poll() is None:
                _stop(p)
        _sh(str(REPO / "scripts/bridge-teardown.sh"))


def _client(*args: str, limit: int = 150) -> str:
    r = subprocess.run(
        ["ip", "netns", "exec", "zkmb-client", "timeout", str(limit), sys.executable, "-m"]
        + ["tests.middlebox.netns_roles", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=limit + 20,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_real_proofs_through_the_bridge(real_net):
    cert, key_dir, log = real_net
    out = _client("client_real", str(cert), str(key_dir))
    assert "ANSWER www.example.test. 300 IN A 192.0.2.1" in out, out
    text = log.read_text()
    assert "action=handed_over" in text
    assert "action=forward reason=verified" in text


def test_proofless_client_blocked_plain_tcp_passes(real_net):
    cert, _, log = real_net
    out = _client("client_noproof", str(cert), limit=40)
    assert "ECHO plain tcp" in out
    assert "HANDSHAKE ok" in out
    assert "BLOCKED" in out and "ANSWER" not in out


def test_real_stub_through_the_bridge(real_net):
    """Issue #9: the actual stub service (ProvingUpstream + Listener, Groth16Prover) in zkmb-client,
    queried with dnspython over UDP on loopback; the bridge is transparent, so the stub's relay address
    is the resolver's own (10.253.0.2:853) and its proof endpoint the bridge's."""
    cert, key_dir, log = real_net
    verified = "action=forward reason=verified"
    before = log.read_text().count(verified)
    out = _client("stub_real", str(cert), str(key_dir), limit=200)
    # the blocked name: NXDOMAIN + EDE 15 from the stub itself, asked before any proved connection existed
    assert "BLOCKED NXDOMAIN [15]" in out, out
    assert "ANSWER www.example.test. 300 IN A 192.0.2.1" in out, out
    assert "STATS blocked=1 upstream=1" in out, out  # only the allowed name went upstream
    deadline = time.time() + 5
    while log.read_text().count(verified) == before and time.time() < deadline:
        time.sleep(0.05)
    assert log.read_text().count(verified) - before == 1  # exactly the one allowed query's record
