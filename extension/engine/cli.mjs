// node extension/engine/cli.mjs check|mask PAYLOAD.json < lines.jsonl
// The JavaScript engine behind `veil check --engine js` and `veil mask --engine js`: the same answers, byte
// for byte, as the Python engine's (backend/engine/jsonl.py); exit status 1 if any line was malformed.
import { readFileSync } from 'node:fs';
import { Engine } from './checker.js';
import { pythonJson, readLines, run } from './jsonl.js';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const [mode, payloadPath] = process.argv.slice(2);
if (!['check', 'mask'].includes(mode) || !payloadPath) {
  process.stderr.write('usage: node extension/engine/cli.mjs check|mask PAYLOAD.json < lines.jsonl\n');
  process.exit(2);
}
const engine = new Engine(JSON.parse(readFileSync(payloadPath, 'utf8')));
let ok = true;
const out = [];
for (const [answer, lineOk] of run(engine, readLines(await readStdin()), mode)) {
  ok = ok && lineOk;
  out.push(`${pythonJson(answer)}\n`);
}
process.stdout.write(out.join(''), () => process.exit(ok ? 0 : 1));
