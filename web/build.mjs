// Bundles the app into dist/ (index.html, app.js, app.css) for the gateway to
// serve, or with --tests bundles test/*.test.ts into .test-out/ for `node --test`.
// Everything the browser needs is in dist/: the gateway's CSP (default-src
// 'self') forbids CDNs and inline code.
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));

if (process.argv.includes('--tests')) {
  const out = join(root, '.test-out');
  await rm(out, { recursive: true, force: true });
  const tests = (await readdir(join(root, 'test')))
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => join(root, 'test', f));
  await build({
    entryPoints: tests,
    outdir: out,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
} else {
  const out = join(root, 'dist');
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  await build({
    entryPoints: { app: join(root, 'src', 'main.ts') },
    outdir: out,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'warning',
  });
  await copyFile(join(root, 'src', 'index.html'), join(out, 'index.html'));
}
