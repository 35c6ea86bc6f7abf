// Warm, in-process snarkjs timings: node snarkjs_bench.js ZKEY WTNS VK.json RUNS
// Prints one JSON object {prove_ms: [...], verify_ms: [...]} (each after one untimed warm-up run).
const snarkjs = require("snarkjs");
const fs = require("fs");

async function main() {
    const [zkeyPath, wtnsPath, vkPath, runsArg] = process.argv.slice(2);
    const runs = parseInt(runsArg, 10);
    const zkey = { type: "mem", data: new Uint8Array(fs.readFileSync(zkeyPath)) };
    const wtns = { type: "mem", data: new Uint8Array(fs.readFileSync(wtnsPath)) };
    const vk = JSON.parse(fs.readFileSync(vkPath, "utf8"));
    const out = { prove_ms: [], verify_ms: [] };
    let res = await snarkjs.groth16.prove(zkey, wtns);
    for (let i = 0; i < runs; i++) {
        const t0 = process.hrtime.bigint();
        res = await snarkjs.groth16.prove(zkey, wtns);
        out.prove_ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const ok = await snarkjs.groth16.verify(vk, res.publicSignals, res.proof);
    if (!ok) throw new Error("snarkjs rejected its own proof");
    for (let i = 0; i < runs; i++) {
        const t0 = process.hrtime.bigint();
        await snarkjs.groth16.verify(vk, res.publicSignals, res.proof);
        out.verify_ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0); // ffjavascript keeps worker threads alive
}

main().catch((e) => { console.error(e); process.exit(1); });
