"""``zkmb bench groth16``: our prover and verifier against snarkjs on the same R1CS and .zkey.

The circuits are circom circuits from circomlib (chains of Poseidon(2) hashes, about 240 constraints
each), compiled with circom2, keyed with snarkjs (powers of tau, groth16 setup), and cached under
``$ZKMB_BENCH_CACHE`` (default ``~/.cache/zkmb/bench``).  Both provers get the same .zkey and .wtns;
snarkjs runs warm in one node process (its default worker threads), zkmb in this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import numba

from ..errors import ZkmbError
from . import median_time

REPO_TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "node_modules"
JS_BENCH = Path(__file__).resolve().parent / "js" / "snarkjs_bench.js"

CHAIN_CIRCUIT = """pragma circom 2.0.0;
include "circomlib/circuits/poseidon.circom";
template Chain(n) {
    signal input x;
    signal input y;
    signal output out;
    component h[n];
    for (var i = 0; i < n; i++) {
        h[i] = Poseidon(2);
        h[i].inputs[0] <== i == 0 ? x : h[i - 1].out;
        h[i].inputs[1] <== y;
    }
    out <== h[n - 1].out;
}
component main {public [x]} = Chain(%d);
"""


def tools_dir() -> Path:
    return Path(os.environ.get("ZKMB_NODE_TOOLS", REPO_TOOLS))


def _run(cmd: list[str], cwd: Path, timeout: float) -> str:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise ZkmbError(f"{' '.join(cmd[:4])} ... failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return res.stdout


def build_chain(n_hashes: int, power: int) -> Path:
    """circom + snarkjs artifacts of a Poseidon chain (cached): circuit.r1cs/.wtns, key.zkey, vk.json."""
    tools = tools_dir()
    snarkjs, circom = str(tools / ".bin" / "snarkjs"), str(tools / ".bin" / "circom2")
    if not (shutil.which("node") and Path(snarkjs).exists() and Path(circom).exists()):
        raise ZkmbError(f"the groth16 benchmark needs node, snarkjs and circom2 (looked in {tools})")
    cache = Path(os.environ.get("ZKMB_BENCH_CACHE", Path.home() / ".cache" / "zkmb" / "bench"))
    ptau = cache / f"pot{power}.ptau"
    cache.mkdir(parents=True, exist_ok=True)
    if not ptau.exists():
        _run(["node", snarkjs, "powersoftau", "new", "bn128", str(power), "p0.ptau"], cache, 3600)
        _run(
            ["node", snarkjs, "powersoftau", "contribute", "p0.ptau", "p1.ptau", "-e=zkmb bench"], cache, 3600
        )
        _run(["node", snarkjs, "powersoftau", "prepare", "phase2", "p1.ptau", ptau.name], cache, 3600)
        for f in ("p0.ptau", "p1.ptau"):
            (cache / f).unlink()
    src = CHAIN_CIRCUIT % n_hashes
    d = cache / f"chain{n_hashes}-{hashlib.sha256(src.encode()).hexdigest()[:8]}"
    if (d / "DONE").exists():
        return d
    shutil.rmtree(d, ignore_errors=True)
    lib = d / "lib" / "circomlib" / "circuits"
    lib.mkdir(parents=True)
    for f in (tools / "circomlib" / "circuits").glob("poseidon*.circom"):
        shutil.copy(f, lib / f.name)
    (d / "circuit.circom").write_text(src)
    _run(["node", circom, "circuit.circom", "--r1cs", "--wasm", "--O2", "-l", "lib", "-o", "."], d, 600)
    (d / "input.json").write_text(json.dumps({"x": "3", "y": "5"}))
    _run(
        ["node", "circuit_js/generate_witness.js", "circuit_js/circuit.wasm", "input.json", "circuit.wtns"],
        d,
        600,
    )
    _run(["node", snarkjs, "groth16", "setup", "circuit.r1cs", str(ptau), "key.zkey"], d, 3600)
    if not (d / "key.zkey").stat().st_size:  # snarkjs exits 0 on some errors
        raise ZkmbError(f"snarkjs groth16 setup made no key in {d} (ptau 2^{power} too small?)")
    _run(["node", snarkjs, "zkey", "export", "verificationkey", "key.zkey", "vk.json"], d, 600)
    (d / "DONE").write_text("ok")
    return d


def bench_circuit(d: Path, runs: int) -> dict[str, Any]:
    """Side-by-side medians for one built circuit directory (see build_chain)."""
    from ..groth16 import snarkjs as sj
    from ..groth16.convert import proving_key_from_zkey, verifying_key_from_snarkjs
    from ..groth16.prover import prove
    from ..groth16.verifier import batch_verify, verify
    from ..r1cs import read_r1cs, read_wtns

    cs = read_r1cs(d / "circuit.r1cs")
    wtns = read_wtns(d / "circuit.wtns", cs)
    pk = proving_key_from_zkey(sj.read_zkey(d / "key.zkey"))
    vk = verifying_key_from_snarkjs(sj.vk_from_json(json.loads((d / "vk.json").read_text())))
    prove_s = median_time(lambda: prove(pk, wtns), runs)
    proof = prove(pk, wtns)
    public = wtns.public_inputs()
    if not verify(vk, public, proof):
        raise ZkmbError("benchmark proof does not verify")
    verify_ms = median_time(lambda: verify(vk, public, proof), runs * 5) * 1e3
    batch = [(public, prove(pk, wtns)) for _ in range(8)] * 8
    batch_ms = median_time(lambda: batch_verify(vk, batch), runs) * 1e3 / len(batch)
    env = dict(os.environ, NODE_PATH=str(tools_dir()))
    res = subprocess.run(
        ["node", str(JS_BENCH), "key.zkey", "circuit.wtns", "vk.json", str(runs)],
        cwd=d,
        capture_output=True,
        text=True,
        timeout=3600,
        env=env,
    )
    if res.returncode != 0:
        raise ZkmbError(f"snarkjs benchmark failed: {res.stderr[-2000:]}")
    js = {k: statistics.median(v) for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items()}
    return {
        "constraints": cs.n_constraints,
        "prove_s": prove_s,
        "snarkjs_prove_s": js["prove_ms"] / 1e3,
        "prove_speedup": js["prove_ms"] / 1e3 / prove_s,
        "verify_ms": verify_ms,
        "snarkjs_verify_ms": js["verify_ms"],
        "batch64_verify_ms_per_proof": batch_ms,
    }


def run(quick: bool = False) -> dict[str, Any]:
    runs = 3 if quick else 7
    out: dict[str, Any] = {"runs": runs, "threads": numba.get_num_threads(), "circuits": {}}
    sizes = [(20, 14)] if quick else [(20, 14), (90, 16)]
    from .smoke import smoke

    if smoke(quick):  # two Poseidons in a 2^10 ptau: seconds, also to build
        sizes, out["smoke"] = [(2, 10)], True
    for n_hashes, power in sizes:
        out["circuits"][f"poseidon_chain_{n_hashes}"] = bench_circuit(build_chain(n_hashes, power), runs)
    main_name = next(reversed(out["circuits"]))
    out.update(out["circuits"][main_name])
    out["main_circuit"] = main_name
    try:
        out["scaling"] = scaling(quick, (10,) if smoke(quick) else None)
    except (ZkmbError, OSError, subprocess.SubprocessError) as e:
        out["scaling"] = {"error": f"{type(e).__name__}: {e}"}
    return out


# --------------------------------------------------------------------------- prover scaling

SCALING_SIZES = tuple(range(12, 21))
QUICK_SCALING_SIZES = (12, 14, 16)


def square_chain(n: int):
    """A circuit of exactly ``n`` multiplication constraints: ``v = x*y``, then ``v = v*v`` (n - 1 times).

    Every wire after the inputs is a random-looking field element, so the prover's MSMs see full-size
    scalars (the worst case: no 0/1 fast path)."""
    from ..r1cs import Circuit, Public, Secret

    class SquareChain(Circuit):
        x = Public()
        y = Secret()

        def define(self, api):
            v = api.mul(self.x, self.y)
            for _ in range(n - 1):
                v = api.mul(v, v)

    return SquareChain


def scaling_constraints(log2: int) -> int:
    """Constraints of the size-``2^log2`` point: the most that fit a ``2^log2`` evaluation domain under
    snarkjs's rule ``ceil(log2(constraints + public + 1)) <= power`` (one public input), minus 2 spare."""
    return (1 << log2) - 4


def cached_ptaus() -> dict[int, Path]:
    """``{power: path}`` of the prepared powers-of-tau files in the benchmark cache."""
    cache = Path(os.environ.get("ZKMB_BENCH_CACHE", Path.home() / ".cache" / "zkmb" / "bench"))
    out = {}
    for p in cache.glob("pot*.ptau"):
        try:
            out[int(p.stem[3:])] = p
        except ValueError:
            continue
    return dict(sorted(out.items()))


def _snarkjs_point(cs, w, log2: int, ptau: Path, runs: int) -> tuple[dict[str, Any], Any]:
    """Build (cached) the snarkjs key of ``cs`` with ``ptau``; time snarkjs; return its numbers and our pk."""
    from ..groth16 import snarkjs as sj
    from ..groth16.convert import proving_key_from_zkey
    from ..r1cs import write_r1cs, write_wtns

    tools = tools_dir()
    snarkjs = str(tools / ".bin" / "snarkjs")
    cache = ptau.parent
    d = cache / f"square{log2}-{cs.digest_hex()[:8]}"
    if not (d / "DONE").exists():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        write_r1cs(cs, d / "circuit.r1cs")
        t0 = time.perf_counter()
        _run(["node", snarkjs, "groth16", "setup", "circuit.r1cs", str(ptau), "key.zkey"], d, 7200)
        setup_s = time.perf_counter() - t0
        if not (d / "key.zkey").exists() or not (d / "key.zkey").stat().st_size:
            raise ZkmbError(f"snarkjs groth16 setup made no key in {d}")
        _run(["node", snarkjs, "zkey", "export", "verificationkey", "key.zkey", "vk.json"], d, 600)
        (d / "setup_s").write_text(f"{setup_s:.3f}")
        (d / "DONE").write_text("ok")
    write_wtns(w, d / "circuit.wtns")
    env = dict(os.environ, NODE_PATH=str(tools))
    res = subprocess.run(
        ["node", str(JS_BENCH), "key.zkey", "circuit.wtns", "vk.json", str(runs)],
        cwd=d,
        capture_output=True,
        text=True,
        timeout=7200,
        env=env,
    )
    if res.returncode != 0:
        raise ZkmbError(f"snarkjs benchmark failed at 2^{log2}: {res.stderr[-2000:]}")
    js = json.loads(res.stdout.strip().splitlines()[-1])
    pk = proving_key_from_zkey(sj.read_zkey(d / "key.zkey"))
    info = {
        "snarkjs_prove_s": statistics.median(js["prove_ms"]) / 1e3,
        "snarkjs_prove_runs_s": [t / 1e3 for t in js["prove_ms"]],
        "snarkjs_setup_s": float((d / "setup_s").read_text()) if (d / "setup_s").exists() else None,
        "ptau": ptau.name,
    }
    return info, pk


def scaling(quick: bool = False, sizes: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Prover time against constraint count on square chains of ``2^k - 4`` constraints.

    Up to the largest cached prepared ptau both provers run on the same R1CS, witness and snarkjs
    ``.zkey`` (``key: "snarkjs zkey"``, with ``ratio`` = snarkjs / zkmb from this run); above it only
    zkmb runs, with a key from its own setup (``key: "zkmb setup"``) and ``snarkjs_skipped`` saying why."""
    from ..groth16.prover import prove
    from ..groth16.setup import setup
    from ..r1cs import compile

    runs = 1 if quick else 3
    sizes = sizes or (QUICK_SCALING_SIZES if quick else SCALING_SIZES)
    ptaus = cached_ptaus()
    have_js = bool(shutil.which("node")) and (tools_dir() / ".bin" / "snarkjs").exists()
    max_power = max(ptaus) if ptaus else None
    points = []
    for k in sizes:
        cs = compile(square_chain(scaling_constraints(k)))
        w = cs.solve({"x": 3, "y": 5})
        point: dict[str, Any] = {"log2": k, "constraints": cs.n_constraints, "runs": runs}
        fit = [p for p in ptaus if p >= k]
        pk = None
        if have_js and fit:
            info, pk = _snarkjs_point(cs, w, k, ptaus[fit[0]], runs)
            point.update(info)
            point["key"] = "snarkjs zkey"
        else:
            point["snarkjs_skipped"] = (
                "node/snarkjs not installed"
                if not have_js
                else f"no prepared powers of tau >= 2^{k} in the cache (largest: "
                f"{'none' if max_power is None else f'2^{max_power}'}); snarkjs groth16 setup needs "
                f"ceil(log2(constraints + public + 1)) <= the ptau's power, and a 2^{k} ceremony "
                "takes hours on this machine"
            )
            t0 = time.perf_counter()
            pk, _vk = setup(cs)
            point["zkmb_setup_s"] = time.perf_counter() - t0
            point["key"] = "zkmb setup"
        times = []
        prove(pk, w)  # warm-up
        for _ in range(runs):
            t0 = time.perf_counter()
            prove(pk, w)
            times.append(time.perf_counter() - t0)
        point["prove_s"] = statistics.median(times)
        point["prove_runs_s"] = times
        if "snarkjs_prove_s" in point:
            point["ratio"] = point["snarkjs_prove_s"] / point["prove_s"]
        points.append(point)
        del pk
    return {
        "runs": runs,
        "circuit": "square chain: v = x*y, then v = v*v; 2^k - 4 constraints, 1 public input",
        "snarkjs_max_log2": max_power if have_js else None,
        "points": points,
    }
