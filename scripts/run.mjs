#!/usr/bin/env node
// Runs one of Threshold's entry points (`node scripts/run.mjs src/main.ts [args…]`).
// With NODE_ENV=production it runs the compiled JavaScript in dist/ with plain node (no
// run-time TypeScript loader: less memory, faster start); it refuses when dist/ is missing or
// older than the sources it was built from. Otherwise (development, the embedded default, CI) it
// registers tsx in this same process and runs the TypeScript source, so `npm install && npm start`
// needs no build step.
import { existsSync, statSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, ...rest] = process.argv.slice(2);
if (!entry || !/\.ts$/.test(entry)) {
  process.stderr.write('usage: node scripts/run.mjs <entry.ts> [args…]\n');
  process.exit(2);
}
const source = resolve(root, entry);
const production = process.env.NODE_ENV === 'production' && process.env.THRESHOLD_RUN_TS !== '1';

/** Newest modification time of the sources that dist/ is built from (TypeScript, and the pages' assets it copies). */
function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.tsx?$/.test(e.name) || p.includes('/pages/assets/')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of ['src', 'machines', 'workers', 'scripts', 'contracts']) if (existsSync(join(root, d))) walk(join(root, d));
  return newest;
}

let target = source;
if (production) {
  target = join(root, 'dist', relative(root, source)).replace(/\.ts$/, '.js');
  if (!existsSync(target)) {
    process.stderr.write(`NODE_ENV=production runs compiled JavaScript, and ${relative(root, target)} does not exist: run \`npm run build\` first.\n`);
    process.exit(1);
  }
  if (statSync(target).mtimeMs + 1 < newestSource()) {
    process.stderr.write(`dist/ is older than the TypeScript sources: run \`npm run build\` again.\n`);
    process.exit(1);
  }
} else {
  const { register } = await import('tsx/esm/api');
  register();
}
// The entry points check `process.argv[1]` to know they were run directly, as with `node file`.
process.argv = [process.argv[0], target, ...rest];
await import(pathToFileURL(target).href);
