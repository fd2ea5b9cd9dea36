// Builds the loadable extension into dist/extension/:
//   node extension/build.mjs            (or: npm run build)
//   VEIL_SERVER_URL=https://veil.example.com npm run build
import { execFileSync } from 'node:child_process';
import { copyFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { normaliseServerUrl } from './shared/server_url.js';

const sourceDir = dirname(fileURLToPath(import.meta.url));
const rootDir = dirname(sourceDir);
// VEIL_EXTENSION_OUT: another folder (`veil build-extension --out DIR` uses it).
const outDir = process.env.VEIL_EXTENSION_OUT ? resolve(process.env.VEIL_EXTENSION_OUT) : join(rootDir, 'dist', 'extension');
const SOCKET_IO_BUNDLE = join(rootDir, 'node_modules', 'socket.io-client', 'dist', 'socket.io.esm.min.js');
// background/service_worker.js imports this path; the file only exists in the build.
const VENDOR_SOCKET_IO = join(outDir, 'vendor', 'socket.io.esm.min.js');
const DEFAULT_SERVER_URL = 'http://127.0.0.1:5000';
// The rules the extension starts with before its first sync: shared_rules/default and shared_rules/consoles,
// compiled by the backend's own compiler so both engines load the same payload.
const VEIL_CLI = process.env.VEIL_CLI ?? join(rootDir, '.venv', 'bin', 'veil');

function serverUrlFromEnvironment() {
  const raw = process.env.VEIL_SERVER_URL;
  if (!raw) return DEFAULT_SERVER_URL;
  const result = normaliseServerUrl(raw);
  if (!result.ok) throw new Error(`VEIL_SERVER_URL=${raw} cannot be used: ${result.reason}`);
  return result.url;
}

async function checkJson(path) {
  try {
    JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new Error(`${relative(rootDir, path)}: ${error.message}`);
  }
}

const serverUrl = serverUrlFromEnvironment();
await rm(outDir, { recursive: true, force: true });
await cp(sourceDir, outDir, {
  recursive: true,
  filter: (path) => path !== fileURLToPath(import.meta.url),
});
await mkdir(dirname(VENDOR_SOCKET_IO), { recursive: true });
try {
  await copyFile(SOCKET_IO_BUNDLE, VENDOR_SOCKET_IO);
} catch {
  throw new Error('socket.io-client is not installed: run `npm ci` first');
}
await writeFile(join(outDir, 'config.json'), `${JSON.stringify({ serverUrl }, null, 2)}\n`);

// Content scripts cannot be ES modules: the core and the engine go into one classic script.
await build({
  entryPoints: [join(sourceDir, 'content', 'index.js')],
  bundle: true,
  format: 'iife',
  target: 'chrome120',
  outfile: join(outDir, 'content', 'veil.js'),
  logLevel: 'warning',
});

await mkdir(join(outDir, 'rules'), { recursive: true });
try {
  execFileSync(VEIL_CLI, ['rules', 'compile', '--out', join(outDir, 'rules', 'default.json')], {
    cwd: rootDir, stdio: ['ignore', 'ignore', 'inherit'],
  });
} catch (error) {
  throw new Error(`compiling the default rules with ${VEIL_CLI} failed (make install first): ${error.message}`);
}

for (const file of ['manifest.json', '_locales/en/messages.json', '_locales/zh_CN/messages.json']) {
  await checkJson(join(outDir, file));
}
console.log(`Built ${relative(rootDir, outDir)} (server ${serverUrl})`);
