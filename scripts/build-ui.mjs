// Builds the web console (ui/) into dist/ui: type-checks the sources, bundles and minifies them
// with esbuild into dist/ui/assets/app-<hash>.js and app-<hash>.css (uPlot's CSS included), each
// with a .gz beside it, and writes dist/ui/index.html naming them. Same sources, same bytes.
// `--out DIR` writes there instead of dist/ui (the release kit builds into its own folder).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ui = path.join(root, 'ui');
const outArg = process.argv.indexOf('--out');
if (outArg !== -1 && !process.argv[outArg + 1]) {
  console.error('build-ui: --out needs a directory');
  process.exit(2);
}
const out = outArg === -1 ? path.join(root, 'dist', 'ui') : path.resolve(process.argv[outArg + 1]);
const shown = path.relative(process.cwd(), out) || '.';
const assets = path.join(out, 'assets');

const check = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ui, 'tsconfig.json'), '--noEmit'], { stdio: 'inherit' });
if (check.status !== 0) {
  console.error('build-ui: the console does not type-check (tsc -p ui/tsconfig.json)');
  process.exit(1);
}

const result = await build({
  absWorkingDir: root,
  entryPoints: [path.join(ui, 'src', 'main.tsx')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  charset: 'utf8',
  legalComments: 'eof',
  sourcemap: false,
  write: false,
  outdir: assets,
  entryNames: 'app',
  logLevel: 'warning',
});

// Only what this script writes: --out may name a folder holding other things.
rmSync(assets, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const names = {};
let raw = 0;
let gz = 0;
for (const file of result.outputFiles) {
  const ext = path.extname(file.path);
  const hash = createHash('sha256').update(file.contents).digest('hex').slice(0, 12);
  const name = `app-${hash}${ext}`;
  const zipped = gzipSync(file.contents, { level: 9 });
  writeFileSync(path.join(assets, name), file.contents);
  writeFileSync(path.join(assets, `${name}.gz`), zipped);
  names[ext] = name;
  raw += file.contents.length;
  gz += zipped.length;
  console.log(`build-ui: ${shown}/assets/${name}  ${(file.contents.length / 1024).toFixed(1)} KiB, ${(zipped.length / 1024).toFixed(1)} KiB gzipped`);
}
if (!names['.js'] || !names['.css']) {
  console.error('build-ui: esbuild did not produce both app.js and app.css');
  process.exit(1);
}

let html = readFileSync(path.join(ui, 'index.html'), 'utf8');
for (const [placeholder, ext] of [['assets/app.js', '.js'], ['assets/app.css', '.css']]) {
  if (!html.includes(`"${placeholder}"`)) {
    console.error(`build-ui: ui/index.html does not reference ${placeholder}`);
    process.exit(1);
  }
  html = html.replace(`"${placeholder}"`, `"assets/${names[ext]}"`);
}
writeFileSync(path.join(out, 'index.html'), html);
console.log(`build-ui: ${(raw / 1024).toFixed(1)} KiB of assets, ${(gz / 1024).toFixed(1)} KiB gzipped`);
