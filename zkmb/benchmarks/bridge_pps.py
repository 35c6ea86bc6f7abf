"""Packets per second of NON-DoT traffic through the bridge-mode topology, with and without its rules.

Part of ``zkmb bench middlebox`` (root only).  ``scripts/bridge-setup.sh`` builds the three namespaces
(zkmb-client -- zkmb-bridge -- zkmb-resolver) with its iptables rules (TCP 853 to NFQUEUE, fragments
dropped) and a :class:`~zkmb.middlebox.bridge.Bridge` (stand-in verifier: it never sees these packets)
is bound to the queue; a UDP sender in zkmb-client sends fixed-size datagrams to port ``PORT`` of the
resolver address for a fixed time, as fast as it can, and a sink in zkmb-resolver counts what arrives.
Then the FORWARD rules are deleted (the bridge-nf-call-iptables hook stays on, so the difference is
the cost of the rules themselves) and the same is measured again.  The namespaces are always torn down.

Runs alone on purpose: the namespace names are the netns tests' (tests/middlebox/test_bridge_netns*),
so it refuses to start (``bridge_skipped``) while those namespaces exist instead of tearing down
someone else's; a stale set from a crashed run is removed with ``scripts/bridge-teardown.sh``.
Received rate is what counts (the sender's rate is reported too): on a small shared machine the Python
sender, the sink and the kernel's forwarding share the cores, so the numbers are a lower bound on
what the bridge forwards.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NAMESPACES = ("zkmb-client", "zkmb-bridge", "zkmb-resolver")
RESOLVER = "10.253.0.2"
QUEUE = 9
PORT = 9099
PAYLOAD = 64
"""UDP payload bytes per datagram (a 106-byte Ethernet frame)."""


def why_not() -> str | None:
    """None when the measurement can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "timeout"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        return "needs the netfilterqueue module"
    if not Path("/proc/net/netfilter/nfnetlink_queue").exists():
        return "kernel without nfnetlink_queue"
    if not (REPO / "scripts/bridge-setup.sh").exists():
        return "scripts/bridge-setup.sh not found (not a source checkout)"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False)
    busy = [ns for ns in NAMESPACES if ns in r.stdout.split()]
    if busy:
        return f"namespaces {busy} exist (a netns test running? else scripts/bridge-teardown.sh)"
    return None


# ------------------------------------------------------------------ roles (python -m ... ROLE)


def _role_bridge(queue: str, seconds: str) -> None:
    """A Bridge bound to NFQUEUE ``queue`` (stand-in verifier, no proof endpoint) for ``seconds``."""
    from ..middlebox.bridge import Bridge
    from ..middlebox.flow import FlowConfig
    from ..middlebox.verifier import PolicyRoots, Verifier

    async def main() -> None:
        v = Verifier({}, PolicyRoots(1), check=lambda vk, public, proof: False)
        b = Bridge(v, config=FlowConfig(resolvers=frozenset({RESOLVER})), inject=lambda raw, dst: None)
        await b.start_bridge(int(queue), None)
        print("READY", flush=True)
        await asyncio.sleep(float(seconds))
        await b.close()

    asyncio.run(main())


def _role_sink(port: str, seconds: str) -> None:
    """Count datagrams on ``port``: prints ``COUNT n SPAN s`` (first to last arrival)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind((RESOLVER, int(port)))
    s.settimeout(float(seconds))
    print("READY", flush=True)
    buf = bytearray(2048)
    n, first, last = 0, 0.0, 0.0
    try:
        s.recv_into(buf)
        n, first = 1, time.perf_counter()
        last = first
        s.settimeout(0.5)  # the sender stopped when nothing comes for this long
        while True:
            s.recv_into(buf)
            n += 1
            last = time.perf_counter()
    except TimeoutError:
        pass
    print(f"COUNT {n} SPAN {last - first:.6f}", flush=True)


def _role_send(port: str, seconds: str, size: str) -> None:
    """Send ``size``-byte datagrams to RESOLVER:``port`` for ``seconds``: prints ``SENT n SPAN s``."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((RESOLVER, int(port)))
    data = b"\x00" * int(size)
    n = 0
    t0 = time.perf_counter()
    end = t0 + float(seconds)
    send = s.send
    while True:
        for _ in range(256):
            try:
                send(data)
                n += 1
            except (BlockingIOError, ConnectionRefusedError, OSError):
                pass
        if time.perf_counter() >= end:
            break
    print(f"SENT {n} SPAN {time.perf_counter() - t0:.6f}", flush=True)


# ------------------------------------------------------------------ driver


def _in_ns(ns: str, limit: float, *args: str) -> list[str]:
    cmd = ["ip", "netns", "exec", ns, "timeout", str(int(limit)), sys.executable, "-m", __name__]
    return cmd + list(args)


def _start(ns: str, limit: float, *args: str, ready_s: float = 30.0) -> subprocess.Popen:
    """Start a role in ``ns`` and wait (at most ``ready_s``) for its READY line."""
    p = subprocess.Popen(
        _in_ns(ns, limit, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + ready_s
    seen = ""
    with selectors.DefaultSelector() as sel:
        sel.register(p.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline and p.poll() is None:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                line = p.stdout.readline()
                if line.strip() == "READY":
                    return p
                seen += line
    _stop(p)
    raise RuntimeError(f"{args[0]} in {ns} did not start: {seen.strip()[-300:]!r}")


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def _field(text: str, key: str) -> list[float]:
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == key:
            return [float(words[1]), float(words[3])]
    raise RuntimeError(f"no {key} line in {text!r}")


def _measure(seconds: float) -> tuple[float, float]:
    """(received pps, sent pps) of one run of the sender against a fresh sink."""
    sink = _start("zkmb-resolver", seconds + 20, "sink", str(PORT), str(seconds + 10))
    try:
        r = subprocess.run(
            _in_ns("zkmb-client", seconds + 10, "send", str(PORT), str(seconds), str(PAYLOAD)),
            capture_output=True,
            text=True,
            timeout=seconds + 20,
            check=False,
        )
        sent, sent_span = _field(r.stdout, "SENT")
        out, _ = sink.communicate(timeout=15)
    finally:
        _stop(sink)
    got, span = _field(out, "COUNT")
    return got / max(span, 1e-9), sent / max(sent_span, 1e-9)


def _sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


def measure(seconds: float) -> dict[str, Any]:
    """The ``bridge_*`` keys (see the module docstring), or ``bridge_skipped`` with the reason."""
    why = why_not()
    if why is not None:
        return {"bridge_skipped": why}
    bridge = None
    try:
        r = _sh(str(REPO / "scripts/bridge-setup.sh"), str(QUEUE))
        if r.returncode != 0:
            return {"bridge_skipped": f"bridge-setup.sh failed: {r.stderr.strip()}"}
        bridge = _start("zkmb-bridge", 4 * seconds + 90, "bridge", str(QUEUE), str(4 * seconds + 60))
        with_rules, sent_rules = _measure(seconds)
        bridge_rules = _sh("ip", "netns", "exec", "zkmb-bridge", "iptables", "-S", "FORWARD").stdout
        if "NFQUEUE" not in bridge_rules:
            raise RuntimeError("the NFQUEUE rules were not installed")
        r = _sh("ip", "netns", "exec", "zkmb-bridge", "iptables", "-F", "FORWARD")
        if r.returncode != 0:
            raise RuntimeError(f"deleting the rules failed: {r.stderr.strip()}")
        without, sent_norules = _measure(seconds)
    except (RuntimeError, OSError, subprocess.SubprocessError, IndexError, ValueError) as e:
        return {"bridge_skipped": f"measurement failed: {e}"}
    finally:
        if bridge is not None:
            _stop(bridge)
        _sh(str(REPO / "scripts/bridge-teardown.sh"))
    return {
        "bridge_nondot_pps": with_rules,
        "bridge_nondot_pps_norules": without,
        "bridge_nondot_ratio": with_rules / max(without, 1e-9),
        "bridge_nondot_sent_pps": sent_rules,
        "bridge_nondot_sent_pps_norules": sent_norules,
        "bridge_nondot_seconds": seconds,
        "bridge_nondot_payload_bytes": PAYLOAD,
    }


if __name__ == "__main__":
    {"bridge": _role_bridge, "sink": _role_sink, "send": _role_send}[sys.argv[1]](*sys.argv[2:])
