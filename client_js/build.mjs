// Bundles src/index.js into one minified IIFE at consent_api/web/static/consent.js, with
// banner.css minified and inlined as a string, and each lazily loaded part (src/panel.js,
// src/app.js) into consent-NAME.js beside it; the bundle asks for a part with a hash of its
// content, so a cached part never meets a newer bundle. Prints the gzip sizes and fails when
// the bundle every page loads is above the budget. `--check` builds in memory and fails if a
// committed file differs.

import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

export const OUT = fileURLToPath(new URL('../consent_api/web/static/consent.js', import.meta.url));
/** What every page loads: consent.js. */
export const BUDGET_GZIP = 6 * 1024;
/** Parts load only where needed; each still stays small. */
export const PART_BUDGET_GZIP = 3 * 1024;
export const PARTS = ['panel', 'app'];
export const partPath = (name) => join(dirname(OUT), `consent-${name}.js`);

/** Loads `.css` imports as a minified string. */
const cssAsText = {
  name: 'css-as-text',
  setup(build) {
    build.onLoad({ filter: /\.css$/ }, async (args) => {
      const { code } = await esbuild.transform(readFileSync(args.path, 'utf8'), { loader: 'css', minify: true });
      return { contents: `export default ${JSON.stringify(code.trim())};`, loader: 'js' };
    });
  },
};

/** Version of a part's code, as the bundle asks for it (`consent-NAME.js?v=VERSION`). */
export const partVersion = (code) => createHash('sha256').update(code).digest('hex').slice(0, 10);

async function build(entry, define = {}) {
  const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
  const result = await esbuild.build({
    entryPoints: [fileURLToPath(new URL(`./src/${entry}.js`, import.meta.url))],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2020',
    legalComments: 'none',
    banner: { js: `/*! consent_api snippet ${pkg.version}${entry === 'index' ? '' : ' ' + entry} */` },
    define,
    plugins: [cssAsText],
    write: false,
  });
  return result.outputFiles[0].text;
}

/** Every built file: {path: text}, the bundle first. */
export async function buildAll() {
  const parts = {};
  const versions = {};
  for (const name of PARTS) {
    parts[partPath(name)] = await build(name);
    versions[name] = partVersion(parts[partPath(name)]);
  }
  const code = await build('index', { __PART_VERSIONS__: JSON.stringify(versions) });
  return { [OUT]: code, ...parts };
}

/** The bundle as a string, built in memory. */
export async function bundle() {
  return (await buildAll())[OUT];
}

export const gzipSize = (text) => gzipSync(Buffer.from(text), { level: 9 }).length;

async function main() {
  const files = await buildAll();
  let failed = false;
  for (const [path, code] of Object.entries(files)) {
    const budget = path === OUT ? BUDGET_GZIP : PART_BUDGET_GZIP;
    const gz = gzipSize(code);
    console.log(`${path.split('/').pop()}: ${Buffer.byteLength(code)} bytes, ${gz} bytes gzip (budget ${budget})`);
    if (gz > budget) {
      console.error(`over budget by ${gz - budget} bytes gzip`);
      failed = true;
    }
    if (process.argv.includes('--check')) {
      let committed = '';
      try {
        committed = readFileSync(path, 'utf8');
      } catch {}
      if (committed !== code) {
        console.error(`${path} is stale: run \`npm run build\` in client_js/ and commit it`);
        failed = true;
      }
    } else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, code);
    }
  }
  if (failed) process.exit(1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
