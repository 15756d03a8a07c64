// Builds the component: src/ -> build/ (index.html, atlas.js), writes build/source-hash.txt (sha256 of the
// sources, checked by tests/test_atlas.py so the committed build matches them) and LICENSES.md (every
// package bundled, from esbuild's metafile). Run with `npm run build` after `npm ci`.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'build');

// The same walk as tests/test_atlas.py: sorted names, each as "name\nsize\n" + bytes.
export function sourceHash() {
  const names = [...readdirSync(join(here, 'src')).map((f) => `src/${f}`), 'build.mjs', 'package.json', 'package-lock.json'];
  const hash = createHash('sha256');
  for (const name of names.sort()) {
    const bytes = readFileSync(join(here, name));
    hash.update(`${name}\n${bytes.length}\n`);
    hash.update(bytes);
  }
  return hash.digest('hex');
}

mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [join(here, 'src/main.js')], bundle: true, minify: true, format: 'iife', target: 'es2020',
  outfile: join(out, 'atlas.js'), metafile: true, legalComments: 'eof', logLevel: 'warning',
});
copyFileSync(join(here, 'src/index.html'), join(out, 'index.html'));
writeFileSync(join(out, 'source-hash.txt'), `${sourceHash()}\n`);

const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (!match || packages.has(match[1])) continue;
  const meta = JSON.parse(readFileSync(join(here, 'node_modules', match[1], 'package.json'), 'utf8'));
  const author = typeof meta.author === 'string' ? meta.author : meta.author?.name ?? '';
  packages.set(match[1], { version: meta.version, license: meta.license, author, homepage: meta.homepage ?? '' });
}
// regl-scatterplot's dist file inlines these (its legal comments name kdbush and simplify-js too)
const INLINED = [
  ['@flekschas/utils', 'MIT', 'Fritz Lekschas'], ['camera-2d-simple', 'MIT', 'Fritz Lekschas'],
  ['dom-2d-camera', 'MIT', 'Fritz Lekschas'], ['earcut', 'ISC', 'Mapbox'], ['gl-matrix', 'MIT', 'Brandon Jones, Colin MacKenzie IV'],
  ['kdbush', 'ISC', 'Vladimir Agafonkin'], ['regl-line', 'MIT', 'Fritz Lekschas'], ['simplify-js', 'BSD-2-Clause', 'Vladimir Agafonkin'],
];
const rows = [...packages].sort().map(([name, p]) => `| ${name} | ${p.version} | ${p.license} | ${p.author} |`);
writeFileSync(join(here, 'LICENSES.md'), `# Licences of the code bundled in build/atlas.js

Written by \`npm run build\` (build.mjs) from the packages esbuild bundled; their licence texts are in
\`node_modules/<package>/LICENSE\` after \`npm ci\`, and their legal comments are kept at the end of atlas.js.
The component's own code (src/) is under the project's MIT licence. Nothing is loaded from a CDN at run time.

| package | version | licence | author |
|---|---|---|---|
${rows.join('\n')}

Inlined in regl-scatterplot's own dist file (so bundled with it):

| code | licence | author |
|---|---|---|
${INLINED.map(([name, license, author]) => `| ${name} | ${license} | ${author} |`).join('\n')}
`);
const size = (readFileSync(join(out, 'atlas.js')).length / 1024).toFixed(0);
console.log(`build/atlas.js ${size} KiB, ${packages.size} packages bundled`);
