#!/usr/bin/env node
// `npm run build` step: tsc compiles TypeScript only; the pages' stylesheet and browser scripts
// (src/pages/assets/) are copied beside the compiled code, where src/pages/assets.ts reads them.
import { cpSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
cpSync(resolve(root, 'src/pages/assets'), resolve(root, 'dist/src/pages/assets'), { recursive: true });
