// Builds the panel's browser scripts into backend/static/build/ (build output, not in git):
//   node backend/static/build.mjs        (npm run build:panel; `make install` runs it)
// One bundle per page: src/pages/<page>.js -> build/<page>.js. Each page bundle imports src/common.js,
// so a page holds exactly one Socket.IO connection. Libraries (socket.io-client, chart.js) come from
// node_modules, installed from the npm registry by `npm ci`.
import { readdir, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const staticDir = dirname(fileURLToPath(import.meta.url));
const rootDir = join(staticDir, '..', '..');
const pagesDir = join(staticDir, 'src', 'pages');
const outDir = join(staticDir, 'build');

const pages = (await readdir(pagesDir)).filter((name) => name.endsWith('.js'));
await rm(outDir, { recursive: true, force: true });
await build({
  entryPoints: pages.map((name) => join(pagesDir, name)),
  bundle: true,
  format: 'iife',
  target: 'es2020',
  minify: true,
  sourcemap: false,
  outdir: outDir,
  logLevel: 'warning',
});
console.log(`Built ${relative(rootDir, outDir)} (${pages.length} page scripts)`);
