"""Bridge mode over several NFQUEUEs (``iptables ... -j NFQUEUE --queue-balance A:B``): one verifier
process per queue, one proof endpoint.

The kernel spreads queued packets over the queues by a hash of the packet's IPv4 address pair (both
directions of a connection hash alike, so every packet of a connection reaches the same queue; the ports
are not hashed, so all connections between one client address and one resolver share a queue).  Each
queue is bound by a child process running a :class:`~zkmb.middlebox.bridge.Bridge`: flow state, the
verification pool and deadlines are per child, so the children verify on separate cores.  The set of
ClientHello randoms already seen is one for all children (:class:`~.randoms.SharedRandomSet` in shared
memory): a ClientHello replayed from another address lands on another queue and is still refused.

Proofs: the client connects to the one proof endpoint, owned by the parent.  The parent reads the
first frame (it must be ANNOUNCE, else the connection is answered REJECTED and closed), asks every
child over its control socket whether it has a flow with that 4-tuple, and hands the proof
connection itself (the socket, by ``SCM_RIGHTS``, with the bytes already read) to the owner, which
serves it exactly as a single-process bridge does (binding check on the random, rate limit,
answers).  Nobody owns it: REJECTED ``no such connection``.  Consequence: a proof connection stays
with its child; an ANNOUNCE rebinding it to a flow of another queue is answered ``no such
connection`` (the stub uses one proof connection per TLS connection).  The parent forwards policy
root rotations to every child.  A dead child leaves its queue without a listener: the kernel drops
its packets (no ``--queue-bypass``: fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

from zkmb.errors import InvalidInput
from zkmb.proofchannel import HEADER_LEN, Announce, MessageRejected, Rejected, from_wire, split_frame, to_wire
from zkmb.service import configure_service

from .randoms import SharedRandomSet

__all__ = ["MultiQueueBridge", "parse_queues", "serve_child"]

log = logging.getLogger("zkmb.middlebox")
_CTRL_MAX = 4096
_FIRST_FRAME_S = 10.0
_ASK_S = 2.0


def parse_queues(text: str | int) -> list[int]:
    """``"N"`` or ``"N:M"`` (N <= M, both in [0, 65535]) -> the queue numbers; InvalidInput otherwise."""
    first, sep, last = str(text).partition(":")
    try:
        lo, hi = int(first), int(last if sep else first)
    except ValueError:
        raise InvalidInput(f"expected QUEUE or FIRST:LAST, got {text!r}") from None
    if not 0 <= lo <= hi <= 65535:
        raise InvalidInput(f"bad queue range {text!r}")
    if hi - lo >= 64:
        raise InvalidInput(f"queue range {text!r}: at most 64 queues")
    return list(range(lo, hi + 1))


# ---------------------------------------------------------------------------------------------- child


def serve_child(bridge, queue: int, proof_listen: tuple[str, int] | None, ctrl: socket.socket | None):
    """Run ``bridge`` on NFQUEUE ``queue`` until SIGTERM; proof connections come from the parent over
    ``ctrl`` (and ``proof_listen`` is None), or it listens itself (single queue)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await bridge.start_bridge(queue, proof_listen)
        if ctrl is not None:
            ctrl.setblocking(False)
            loop.add_reader(ctrl.fileno(), _on_control, bridge, ctrl, stop)
            ctrl.send(json.dumps({"ready": True}).encode())
        log.info("bridge queue=%d pid=%d ready", queue, os.getpid())
        try:
            await stop.wait()
        finally:
            # stopping: a second signal (Ctrl-C reaches the whole group, then the parent's terminate)
            # must neither interrupt the close nor hit asyncio's wakeup fd as the loop closes
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)
            if ctrl is not None:
                loop.remove_reader(ctrl.fileno())
            await bridge.close()

    configure_service()  # a 1 ms GIL hand-off for the event loop (zkmb/service.py)
    asyncio.run(main())


def _on_control(bridge, ctrl: socket.socket, stop: asyncio.Event) -> None:
    """One control message from the parent: ``own`` (reply), ``take`` (a proof socket), ``rotate``."""
    try:
        data, fds, _, _ = socket.recv_fds(ctrl, _CTRL_MAX, 1)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        stop.set()
        return
    if not data:
        stop.set()  # the parent is gone
        return
    try:
        req = json.loads(data)
        op = req["op"]
        if op == "own":
            key = (tuple(req["client"]), tuple(req["server"]))
            ctrl.send(json.dumps({"own": key in bridge.conns}).encode())
        elif op == "take" and fds:
            sock = socket.socket(fileno=fds.pop())
            asyncio.ensure_future(_take(bridge, sock, bytes.fromhex(req["initial"])))
        elif op == "rotate":
            bridge.rotate_root(int(req["root"]))
    except (ValueError, KeyError, TypeError, OSError) as e:
        log.error("bridge control message refused: %r", e)
    finally:
        for fd in fds:
            os.close(fd)


async def _take(bridge, sock: socket.socket, initial: bytes) -> None:
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    await bridge._proofs(reader, writer, initial)


def _child_entry(factory, queue: int, ctrl: socket.socket, level: int, randoms=None) -> None:
    logging.basicConfig(level=level, format=f"%(asctime)s q{queue} %(message)s", force=True)
    bridge = factory(queue)
    if randoms is not None:
        bridge.randoms = randoms  # one seen-random set for every queue (SPEC §2)
    serve_child(bridge, queue, None, ctrl)


# --------------------------------------------------------------------------------------------- parent


class MultiQueueBridge:
    """The parent: one child process per queue (``factory(queue)`` makes each child's Bridge, called
    in the child) and the shared proof endpoint.  ``start`` then ``close``.

    Children are *spawned*, not forked: the parent has usually run numba kernels already (loading and
    checking keys), and GNU OpenMP's thread pool does not survive a fork.  So ``factory`` must be
    picklable (a module-level function or a :func:`functools.partial` of one) and builds everything,
    keys included, inside the child."""

    def __init__(
        self,
        factory: Callable[[int], object],
        queues: list[int],
        *,
        roots=None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not queues:
            raise InvalidInput("no queues")
        self.factory, self.queues = factory, list(queues)
        self.roots, self.clock = roots, clock  # the parent's view of the roots (for publishing)
        self.children: list[tuple[multiprocessing.Process, socket.socket, threading.Lock]] = []
        self._listener: socket.socket | None = None
        self._tasks: set[asyncio.Task] = set()
        self.randoms: SharedRandomSet | None = None
        """The ClientHello randoms seen by any child (made at :meth:`start`, shared with every child)."""

    async def start(self, proof_listen: tuple[str, int], *, ready_timeout: float = 120.0) -> int:
        """Spawn the children and wait until each has bound its queue (keys loaded), then listen for
        proof connections; returns the proof port.  InvalidInput if a child does not come up."""
        ctx = multiprocessing.get_context("spawn")
        level = logging.getLogger().getEffectiveLevel()
        if self.randoms is None:
            self.randoms = SharedRandomSet(ctx)
        for q in self.queues:
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            p = ctx.Process(
                target=_child_entry, args=(self.factory, q, theirs, level, self.randoms), daemon=True
            )
            p.start()
            theirs.close()
            self.children.append((p, mine, threading.Lock()))
        loop = asyncio.get_running_loop()
        for (_p, mine, _lock), q in zip(self.children, self.queues, strict=True):
            mine.settimeout(ready_timeout)
            try:
                msg = await loop.run_in_executor(None, mine.recv, _CTRL_MAX)
                ready = json.loads(msg).get("ready") is True if msg else False
            except (OSError, ValueError, AttributeError):
                ready = False
            if not ready:
                await self.close()
                raise InvalidInput(f"bridge child for queue {q} did not start (see its log)")
            mine.settimeout(_ASK_S)
        lst = socket.create_server(proof_listen, reuse_port=False)
        lst.setblocking(False)
        self._listener = lst
        self._tasks.add(asyncio.ensure_future(self._serve()))
        return lst.getsockname()[1]

    def rotate_root(self, root: int) -> None:
        """Forward a policy root rotation to every child (and rotate the parent's copy)."""
        if self.roots is not None:
            self.roots.rotate(root, self.clock())
        msg = json.dumps({"op": "rotate", "root": root}).encode()
        for _, ctrl, lock in self.children:
            with lock, contextlib.suppress(OSError):
                ctrl.send(msg)

    def alive(self) -> list[bool]:
        return [p.is_alive() for p, _, _ in self.children]

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for p, _, _ in self.children:
            if p.is_alive():
                p.terminate()
        for p, ctrl, _ in self.children:
            await asyncio.get_running_loop().run_in_executor(None, p.join, 10)
            if p.is_alive():
                p.kill()
            ctrl.close()
        self.children.clear()

    # ------------------------------------------------------------------ proof connections

    def _ask(self, i: int, client, server) -> bool:
        _, ctrl, lock = self.children[i]
        with lock:
            try:
                ctrl.send(json.dumps({"op": "own", "client": client, "server": server}).encode())
                return bool(json.loads(ctrl.recv(_CTRL_MAX)).get("own"))
            except (OSError, ValueError):
                return False

    def _hand_over(self, i: int, sock: socket.socket, initial: bytes) -> bool:
        _, ctrl, lock = self.children[i]
        msg = json.dumps({"op": "take", "initial": initial.hex()}).encode()
        with lock:
            try:
                return socket.send_fds(ctrl, [msg], [sock.fileno()]) > 0
            except OSError:
                return False

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                sock, _ = await loop.sock_accept(self._listener)
                task = asyncio.ensure_future(self._accept(sock))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _read_exactly(self, sock: socket.socket, n: int) -> bytes:
        out = b""
        loop = asyncio.get_running_loop()
        while len(out) < n:
            data = await loop.sock_recv(sock, n - len(out))
            if not data:
                raise ConnectionError("closed")
            out += data
        return out

    async def _accept(self, sock: socket.socket) -> None:
        """Read exactly the first frame (nothing more: the rest is the owner's), find the owner."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        try:
            ip = sock.getpeername()[0]
            head = await asyncio.wait_for(self._read_exactly(sock, HEADER_LEN), _FIRST_FRAME_S)
            split_frame(head)  # version / type / length checks (raises)
            body_len = int.from_bytes(head[2:4], "big")
            frame = head + await asyncio.wait_for(self._read_exactly(sock, body_len), _FIRST_FRAME_S)
            try:
                msg = from_wire(frame)
            except InvalidInput:
                msg = None
            if not isinstance(msg, Announce):
                await loop.sock_sendall(
                    sock, to_wire(Rejected("announce", reason="announce the connection first"))
                )
                return
            client, server = list(msg.client), list(msg.server)
            for i in range(len(self.children)):
                if await loop.run_in_executor(None, self._ask, i, client, server):
                    if await loop.run_in_executor(None, self._hand_over, i, sock, frame):
                        log.info("proof client=%s queue=%d action=handed_over", ip, self.queues[i])
                        return  # our descriptor closes below; the child holds its own
            log.info("proof client=%s result=rejected reason=unknown_connection", ip)
            await loop.sock_sendall(sock, to_wire(Rejected("announce", reason="no such connection")))
        except (MessageRejected, TimeoutError, OSError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            sock.close()
