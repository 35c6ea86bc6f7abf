// Poseidon test vectors from circomlibjs (run by tests/gadgets/test_poseidon.py; offline).
// usage: node circomlibjs_poseidon.mjs <node_modules dir>  < request.json  > answer.json
// request: {"hash": [[x1, ..., xn], ...], "perm": [[s0, s1, ..., s_{t-1}], ...], "tagged": [[tag, x1,
//   ..., xn], ...], "constants": bool} (decimal strings).  answer: {"reference": [...], "opt": [...],
//   "wasm": [...]} for "hash" (the three circomlibjs implementations), "perm": [[t outputs], ...]
//   (reference poseidon with initState = s0 and nOut = t), "tagged": [[reference, opt, wasm], ...]
//   (poseidon(inputs, initState = tag), one output: circomlib PoseidonEx(n, 1) with that initialState),
//   and with "constants": {"C": [...], "M": [...]} from src/poseidon_constants.js.
import path from "path";
import { pathToFileURL } from "url";

const tools = process.argv[2];
const load = async (...p) => import(pathToFileURL(path.join(tools, "circomlibjs", ...p)).href);
const lib = await load("main.js");

let data = "";
for await (const chunk of process.stdin) data += chunk;
const req = JSON.parse(data);

const ref = await lib.buildPoseidonReference();
const opt = await lib.buildPoseidonOpt();
const wasm = await lib.buildPoseidon();
const str = (F, x) => F.toObject(x).toString();

const out = { reference: [], opt: [], wasm: [], perm: [], tagged: [] };
for (const inp of req.hash || []) {
  const xs = inp.map((s) => BigInt(s));
  out.reference.push(str(ref.F, ref(xs)));
  out.opt.push(str(opt.F, opt(xs)));
  out.wasm.push(str(wasm.F, wasm(xs)));
}
for (const st of req.perm || []) {
  const xs = st.map((s) => BigInt(s));
  const res = ref(xs.slice(1), xs[0], xs.length);
  out.perm.push(res.map((x) => str(ref.F, x)));
}
for (const row of req.tagged || []) {
  const [tag, ...xs] = row.map((s) => BigInt(s));
  out.tagged.push([str(ref.F, ref(xs, tag)), str(opt.F, opt(xs, tag)), str(wasm.F, wasm(xs, tag))]);
}
if (req.constants) {
  const consts = (await load("src", "poseidon_constants.js")).default;
  out.C = consts.C.map((c) => c.map((x) => BigInt(x).toString()));
  out.M = consts.M.map((m) => m.map((r) => r.map((x) => BigInt(x).toString())));
}
process.stdout.write(JSON.stringify(out));
