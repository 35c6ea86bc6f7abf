"""``zkmb bench keys``: what a new client downloads, and how long until its first answer (issue #17).

A key directory for the stub's default circuits (ChaCha20 CO and PAD, Q classes 64 and 128) is made once
by ``zkmb setup``'s code in ``~/.cache/zkmb/bench-keys/keys`` (a fresh single-party setup: what any
network that runs ``zkmb setup`` today publishes; the demo's keys are left alone), with the demo's policy
built from the shared blocklists.  A local publishing endpoint serves them; then, in a fresh state
directory:

* ``bootstrap_bytes``: every byte a default stub downloads (:func:`~zkmb.client_stub.bootstrap.bootstrap`:
  root, policy, key manifest, ``NAME.vk``, ``NAME.pkc``, the SRS parts it needs), counted by the
  endpoint; ``bootstrap_key_bytes`` without the policy, ``bootstrap_srs_bytes`` the SRS parts alone;
* ``co_pk_bytes``: the compact ``co_chacha20.pkc`` a client downloads; ``co_pk_full_bytes`` the full
  ``co_chacha20.pk`` (what clients downloaded before, and what the client's decompressed cache holds);
* ``first_answer_fresh_s``: from the start of the bootstrap to the first answer through the stub:
  download, decompression (``decompress_co_s``: co_chacha20.pkc into its cache, every point validated),
  the key checks against the SRS (``keycheck_s``), then the stub and a local middlebox start and the
  first query waits for the channel opening (``first_query_s``: TLS handshake, CO proof and its
  verification, PAD and Q proofs).  Numba kernels are compiled beforehand (a warm machine, cold state).

With ``--quick`` and ``ZKMB_BENCH_SMOKE=1`` (CI's smoke run) the same code runs on the small circuits only
(PAD and Q-64, no channel opening: no first answer), in ``$ZKMB_BENCH_CACHE/keys-smoke``, with the policy
of ``$ZKMB_BLOCKLISTS``; its numbers mean nothing.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ZkmbError

TARGETS = {"target_bootstrap_bytes": 250_000_000, "target_first_answer_fresh_s": 180.0}
NAMES = ("co_chacha20", "pad_block", "pad_blocks_3", "q_64", "q_128")
"""What a default stub downloads: its circuits (client_stub.prover.circuit_names) and the batch PAD key."""
SIZES = (64, 128)
CO_DEADLINE_S = 300.0


def bench_state_dir() -> Path:
    """``~/.cache/zkmb/bench-keys`` (keys, policy and certificate of this suite)."""
    return Path.home() / ".cache" / "zkmb" / "bench-keys"


class _Endpoint:
    """The publishing endpoint on a background event loop, counting the body bytes it sends per path."""

    def __init__(self, policy_path: Path, key_dir: Path):
        from ..middlebox.publish import HttpServer, Publisher

        sent: dict[str, int] = {}

        class Counting(HttpServer):
            def _route(self, path):
                self._path = path
                return super()._route(path)

            async def _send(self, writer, status, ctype, body, *, head, span=None, extra=""):
                size = body.stat().st_size if isinstance(body, Path) else len(body)
                if not head and status in (200, 206):
                    first, last = span if span is not None else (0, size - 1)
                    path = getattr(self, "_path", "?")
                    sent[path] = sent.get(path, 0) + last - first + 1
                await super()._send(writer, status, ctype, body, head=head, span=span, extra=extra)

        self.sent = sent
        self.server = Counting(Publisher(policy_path, key_dir))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        port = asyncio.run_coroutine_threadsafe(self.server.start("127.0.0.1", 0), self.loop).result(10)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _warm_kernels() -> None:
    """Compile (or load) the numba kernels the bootstrap uses, outside the timed part."""
    import numpy as np

    from ..algebra import fast
    from ..algebra.serialize import g1_compress_many, g1_decompress_many, g2_compress_many, g2_decompress_many

    g1, g2 = fast.g1_mul_generator([1, 2, 3]), fast.g2_mul_generator([1, 2, 3])
    g1_decompress_many(g1_compress_many(g1), 3)
    if not np.array_equal(g2_decompress_many(g2_compress_many(g2), 3), g2):
        raise ZkmbError("keys benchmark: G2 compression round trip failed")


def run(quick: bool = False) -> dict[str, Any]:
    """One fresh bootstrap and first answer (``quick`` changes nothing but for a smoke run: it is one run
    either way)."""
    from ..client_stub.bootstrap import ProgressLine, bootstrap
    from ..client_stub.demo import DemoStack, default_blocklist_dir, prepare_keys, prepare_policy
    from ..middlebox.flow import FlowConfig
    from ..policy import load_policy
    from ..resolver import ensure_certificate

    smoke = quick and os.environ.get("ZKMB_BENCH_SMOKE") == "1"
    names, sizes = (("pad_block", "q_64"), (64,)) if smoke else (NAMES, SIZES)
    quiet = lambda s: None  # noqa: E731
    if smoke:
        state = Path(os.environ.get("ZKMB_BENCH_CACHE", bench_state_dir())) / "keys-smoke"
        lists = Path(os.environ.get("ZKMB_BLOCKLISTS") or default_blocklist_dir())
    else:
        state, lists = bench_state_dir(), default_blocklist_dir()
    state.mkdir(parents=True, exist_ok=True)
    cert, cert_key = ensure_certificate(state)
    prepare_policy(state, lists, out=quiet)
    key_dir = prepare_keys(state, names, out=quiet, check=False)  # generated once, then kept
    _warm_kernels()
    out: dict[str, Any] = {**TARGETS, "circuits": list(names), "runs": 1}
    if smoke:
        out["smoke"] = True
    co = "co_chacha20" if "co_chacha20" in names else names[0]  # (smoke: the PAD key stands in)
    out["co_pk_bytes"] = (key_dir / f"{co}.pkc").stat().st_size
    out["co_pk_full_bytes"] = (key_dir / f"{co}.pk").stat().st_size
    out["srs_full_bytes"] = (key_dir / "srs.bin").stat().st_size

    endpoint = _Endpoint(state / "policy.zkmbp", key_dir)
    with tempfile.TemporaryDirectory(prefix="zkmb-fresh-") as fresh, endpoint as url:
        stats: dict[str, Any] = {}
        t0 = time.perf_counter()
        policy_path, kdir = bootstrap(url, fresh, list(names), stats=stats, progress=ProgressLine())
        t_boot = time.perf_counter()
        sent = dict(endpoint.sent)
        policy = load_policy(policy_path)

        async def first_answer() -> tuple[float, float | None]:
            config = FlowConfig(co_deadline=CO_DEADLINE_S)
            async with DemoStack(policy, kdir, cert, cert_key, sizes=sizes, flow_config=config) as stack:
                r, _ = await stack.ask("example.com")
                t = time.perf_counter()
                if not r.answer:
                    raise ZkmbError(f"keys benchmark: no answer for example.com (rcode {r.rcode()})")
                co = stack.upstream.timings.get("co", [None])[0]
                return t, co

        t_end, co_s = (t_boot, None) if smoke else asyncio.run(first_answer())
    total = sum(sent.values())
    policy_b = sent.get("/policy", 0)
    srs_b = sum(v for k, v in sent.items() if k.endswith(".srsc"))
    out.update(
        {
            "bootstrap_bytes": total,
            "bootstrap_key_bytes": total - policy_b - sent.get("/root", 0),
            "bootstrap_srs_bytes": srs_b,
            "bootstrap_policy_bytes": policy_b,
            "bootstrap_files": sorted(k.rsplit("/", 1)[-1] for k in sent),
            "first_answer_fresh_s": t_end - t0,
            "bootstrap_s": t_boot - t0,
            "download_s": stats.get("download_s"),
            "decompress_co_s": stats.get("decompress_s", {}).get(co),
            "decompress_s": stats.get("decompress_s", {}),
            "keycheck_s": stats.get("keycheck_s", {}),
            "keycheck_co_s": stats.get("keycheck_s", {}).get(co),
            "first_query_s": t_end - t_boot,
            "co_prove_s": co_s,
            "co_deadline_s": CO_DEADLINE_S,
        }
    )
    out["meets_bootstrap_target"] = total <= TARGETS["target_bootstrap_bytes"]
    out["meets_first_answer_target"] = out["first_answer_fresh_s"] <= TARGETS["target_first_answer_fresh_s"]
    if smoke:  # no channel opening, so no first answer
        out.update(first_answer_fresh_s=None, first_query_s=None, meets_first_answer_target=None)
    return out
