/**
 * The resolve hook of bench/shipped-code.mjs (module hooks run on a thread of their own, so they
 * live in a module of their own): a source module of `compare/` or `proxy/` resolves to its tsc
 * build in `dist/`, which must exist and be at least as new as the source.
 */

import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../', import.meta.url).href;
const SHIPPED = ['compare/', 'proxy/'];

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  const url = resolved.url;
  if (!url.startsWith(ROOT) || !url.endsWith('.ts')) return resolved;
  const path = url.slice(ROOT.length);
  if (!SHIPPED.some((dir) => path.startsWith(dir))) return resolved;
  const built = `${ROOT}dist/${path.slice(0, -'.ts'.length)}.js`;
  let builtAt;
  try {
    builtAt = statSync(fileURLToPath(built)).mtimeMs;
  } catch {
    throw new Error(`bench: ${path} has no build in dist/: run \`npm run build\` first`);
  }
  if (statSync(fileURLToPath(url)).mtimeMs > builtAt) throw new Error(`bench: ${path} is newer than its build in dist/: run \`npm run build\` first`);
  return { url: built, format: 'module', shortCircuit: true };
}
