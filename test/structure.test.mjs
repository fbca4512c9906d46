// The source's shape, checked: no import cycles, and the database clients only inside src/drivers/.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from './helpers.mjs';

const test = suite('source structure');
const SRC = join(ROOT, 'src');

function sourceFiles(dir = SRC) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Every module a file imports, statically or with import(), type-only imports included. */
function imports(file) {
  const text = readFileSync(file, 'utf8');
  const specifiers = [
    ...[...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gms)].map((m) => m[1]),
    ...[...text.matchAll(/import\('([^']+)'\)/g)].map((m) => m[1]),
  ];
  return specifiers.map((s) => (s.startsWith('.') ? resolve(dirname(file), s.replace(/\.js$/, '.ts')) : s));
}

const GRAPH = new Map(sourceFiles().map((file) => [file, imports(file)]));

/** One path back to `start`, or null. */
function cycleFrom(start) {
  const seen = new Set();
  const walk = (node, path) => {
    for (const next of GRAPH.get(node) ?? []) {
      if (next === start) return [...path, next];
      if (GRAPH.has(next) && !seen.has(next)) {
        seen.add(next);
        const found = walk(next, [...path, next]);
        if (found) return found;
      }
    }
    return null;
  };
  return walk(start, [start]);
}

test('no module of src/ imports itself through others', () => {
  const cycles = [...GRAPH.keys()].map(cycleFrom).filter(Boolean);
  assert.equal(
    cycles.map((c) => c.map((f) => relative(SRC, f)).join(' -> ')),
    [],
  );
});

test('the database clients are imported only in src/drivers/', () => {
  const outside = [...GRAPH]
    .filter(
      ([file, deps]) =>
        !relative(SRC, file).startsWith('drivers/') && deps.some((d) => d === 'postgres' || d === 'sqlite3'),
    )
    .map(([file]) => relative(SRC, file));
  assert.equal(outside, []);
});

test.run();
