// Bundles src/index.js into one minified IIFE at consent_api/web/static/consent.js,
// with banner.css minified and inlined as a string. Prints the gzip size and fails
// above the budget. `--check` builds in memory and fails if the committed file differs.

import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

export const OUT = fileURLToPath(new URL('../consent_api/web/static/consent.js', import.meta.url));
export const BUDGET_GZIP = 6 * 1024;

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

/** The bundle as a string, built in memory. */
export async function bundle() {
  const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
  const result = await esbuild.build({
    entryPoints: [fileURLToPath(new URL('./src/index.js', import.meta.url))],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2020',
    legalComments: 'none',
    banner: { js: `/*! consent_api snippet ${pkg.version} */` },
    plugins: [cssAsText],
    write: false,
  });
  return result.outputFiles[0].text;
}

export const gzipSize = (text) => gzipSync(Buffer.from(text), { level: 9 }).length;

async function main() {
  const code = await bundle();
  const gz = gzipSize(code);
  console.log(`consent.js: ${Buffer.byteLength(code)} bytes, ${gz} bytes gzip (budget ${BUDGET_GZIP})`);
  if (gz > BUDGET_GZIP) {
    console.error(`over budget by ${gz - BUDGET_GZIP} bytes gzip`);
    process.exit(1);
  }
  if (process.argv.includes('--check')) {
    let committed = '';
    try {
      committed = readFileSync(OUT, 'utf8');
    } catch {}
    if (committed !== code) {
      console.error(`${OUT} is stale: run \`npm run build\` in client_js/ and commit it`);
      process.exit(1);
    }
    return;
  }
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, code);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
