"""Fixtures for the Groth16 tests: real snarkjs/circom artifacts built once and cached.

``snarkjs_artifacts`` compiles two small circom circuits with circom2, runs a snarkjs powers-of-tau
ceremony (power 10) and Groth16 setup (a key without and one with a phase-2 contribution), computes
witnesses and snarkjs proofs. The result is cached in the pytest cache (``.pytest_cache/d/``) under a
key of the circuit sources and tool versions, so only the first run pays the ~20 s. Without node and
the tools (``.tools/node_modules`` or ``$ZKMB_NODE_TOOLS``) the tests skip, or fail under CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("ZKMB_NODE_TOOLS", REPO / ".tools" / "node_modules"))
SNARKJS = TOOLS / ".bin" / "snarkjs"
CIRCOM2 = TOOLS / ".bin" / "circom2"
CIRCOMLIB = TOOLS / "circomlib" / "circuits"
PTAU_POWER = 10
FIXTURE_VERSION = "1"

POSEIDON_CIRCUIT = """pragma circom 2.0.0;
include "circomlib/circuits/poseidon.circom";

// Public: the outputs h = Poseidon(a, b) and prod = a*b, then the public input a.
template Main() {
    signal input a;
    signal input b;
    signal output h;
    signal output prod;
    component p = Poseidon(2);
    p.inputs[0] <== a;
    p.inputs[1] <== b;
    h <== p.out;
    prod <== a * b;
}
component main {public [a]} = Main();
"""

MUL_CIRCUIT = """pragma circom 2.0.0;

// A small chain of products; `unused` is in no constraint (its A/B/C key points are infinity).
template Mul(n) {
    signal input x;
    signal input y;
    signal input unused;
    signal output out;
    signal t[n];
    t[0] <== x * y;
    for (var i = 1; i < n; i++) {
        t[i] <== t[i - 1] * (t[i - 1] + y);
    }
    out <== t[n - 1] * x;
}
component main {public [x]} = Mul(6);
"""

CIRCUITS = {
    "poseidon": (POSEIDON_CIRCUIT, {"a": "3", "b": "5"}),
    "mul": (MUL_CIRCUIT, {"x": "7", "y": "11", "unused": "13"}),
}


@dataclass(frozen=True)
class CircuitArtifacts:
    """Files of one circuit: r1cs, wtns (circom), zkey0 (no contribution), zkey1 (one contribution),
    vk1.json (snarkjs export of zkey1), proof1.json / public1.json (snarkjs proof with zkey1)."""

    name: str
    dir: Path
    input: dict

    def path(self, name: str) -> Path:
        return self.dir / name


@dataclass(frozen=True)
class SnarkjsArtifacts:
    root: Path
    ptau: Path
    circuits: dict[str, CircuitArtifacts]


def tools_available() -> bool:
    return bool(shutil.which("node")) and SNARKJS.exists() and CIRCOM2.exists() and CIRCOMLIB.is_dir()


def run_tool(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a node tool with a timeout; raise with its output if it fails."""
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        shown = " ".join(map(str, cmd))
        raise RuntimeError(f"{shown} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def snarkjs(*args: str | Path, cwd: Path, timeout: float = 300, check: bool = True):
    cmd = ["node", str(SNARKJS), *map(str, args)]
    if check:
        return run_tool(cmd, cwd, timeout)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _cache_key() -> str:
    h = hashlib.sha256(FIXTURE_VERSION.encode())
    for name, (src, inp) in sorted(CIRCUITS.items()):
        h.update(name.encode() + src.encode() + json.dumps(inp, sort_keys=True).encode())
    for pkg in ("snarkjs", "circom2", "circomlib"):
        pj = TOOLS / pkg / "package.json"
        h.update(pj.read_bytes() if pj.exists() else b"-")
    h.update(str(PTAU_POWER).encode())
    return h.hexdigest()[:16]


def _build_circuit(work: Path, name: str, src: str, inp: dict, ptau: Path) -> None:
    d = work / name
    lib = d / "lib" / "circomlib" / "circuits"
    lib.mkdir(parents=True)
    # circom2 runs under WASI and sees only paths below its working directory: copy what we include.
    for f in CIRCOMLIB.glob("poseidon*.circom"):
        shutil.copy(f, lib / f.name)
    (d / "circuit.circom").write_text(src)
    run_tool(
        ["node", str(CIRCOM2), "circuit.circom", "--r1cs", "--wasm", "--sym", "-l", "lib", "-o", "."], d, 120
    )
    (d / "input.json").write_text(json.dumps(inp))
    run_tool(
        ["node", "circuit_js/generate_witness.js", "circuit_js/circuit.wasm", "input.json", "circuit.wtns"],
        d,
        120,
    )
    snarkjs("groth16", "setup", "circuit.r1cs", ptau, "zkey0.zkey", cwd=d)
    snarkjs("zkey", "contribute", "zkey0.zkey", "zkey1.zkey", "--name=test", "-e=zkmb test entropy", cwd=d)
    snarkjs("zkey", "export", "verificationkey", "zkey0.zkey", "vk0.json", cwd=d)
    snarkjs("zkey", "export", "verificationkey", "zkey1.zkey", "vk1.json", cwd=d)
    snarkjs("groth16", "prove", "zkey1.zkey", "circuit.wtns", "proof1.json", "public1.json", cwd=d)
    snarkjs("wtns", "export", "json", "circuit.wtns", "wtns.json", cwd=d)


def _build(root: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root.parent))
    try:
        snarkjs("powersoftau", "new", "bn128", PTAU_POWER, "pot0.ptau", cwd=work)
        snarkjs("powersoftau", "contribute", "pot0.ptau", "pot1.ptau", "--name=t", "-e=zkmb", cwd=work)
        snarkjs("powersoftau", "prepare", "phase2", "pot1.ptau", "pot.ptau", cwd=work, timeout=600)
        for name, (src, inp) in CIRCUITS.items():
            _build_circuit(work, name, src, inp, work / "pot.ptau")
        (work / "DONE").write_text("ok")
        try:
            os.rename(work, root)  # atomic publish; a concurrent builder may have won the race
        except OSError:
            if not (root / "DONE").exists():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def snarkjs_artifacts(request, tmp_path_factory) -> SnarkjsArtifacts:
    """Real circom/snarkjs artifacts (see the module docstring); skips without the node tools."""
    require(tools_available(), f"node, snarkjs, circom2 and circomlib are needed (looked in {TOOLS})")
    cache = getattr(request.config, "cache", None)
    base = cache.mkdir("zkmb-snarkjs") if cache is not None else tmp_path_factory.mktemp("zkmb-snarkjs")
    root = Path(base) / _cache_key()
    if not (root / "DONE").exists():
        if root.exists():
            shutil.rmtree(root, ignore_errors=True)  # a stale partial build
        _build(root)
    circuits = {name: CircuitArtifacts(name, root / name, inp) for name, (_, inp) in CIRCUITS.items()}
    return SnarkjsArtifacts(root, root / "pot.ptau", circuits)
