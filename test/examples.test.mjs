// Every TypeScript and JavaScript example in README.md and docs/ compiles against the built types
// (dist/*.d.ts, tsc --noEmit, strict), and so does the typed API test (test/api.types.ts).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from './helpers.mjs';

const test = suite('examples and public types compile');

const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Fenced js/ts blocks of a page, with the line each starts on. */
function codeBlocks(page) {
  const text = readFileSync(join(ROOT, page), 'utf8');
  return [...text.matchAll(/^```(js|ts|javascript|typescript)\n([\s\S]*?)^```/gm)].map((m) => ({
    page,
    line: text.slice(0, m.index).split('\n').length,
    code: m[2],
  }));
}

/** A CommonJS block (an ecosystem.config.cjs) compiles as .cts; the rest as ES modules. */
function fileName(block) {
  const base = `${block.page.replace(/[/.]/g, '_')}_${block.line}`;
  return /\bmodule\.exports\b/.test(block.code) ? `${base}.cts` : `${base}.mts`;
}

test('every js/ts block in README.md and docs/, and test/api.types.ts, compile with tsc --noEmit --strict', () => {
  const blocks = PAGES.flatMap(codeBlocks);
  assert.ok(blocks.length >= 3, `found ${blocks.length} blocks`);
  // Inside the checkout, so node_modules/@types resolve; 'tidemark' maps to the built declarations.
  const dir = mkdtempSync(join(ROOT, '.examples-'));
  try {
    const names = new Map();
    for (const block of blocks) {
      const name = fileName(block);
      names.set(name, `${block.page}:${block.line}`);
      writeFileSync(
        join(dir, name),
        block.code.includes('export') || name.endsWith('.cts') ? block.code : `${block.code}\nexport {};\n`,
      );
    }
    copyFileSync(join(ROOT, 'test', 'api.types.ts'), join(dir, 'api.types.mts'));
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        types: ['node'],
        skipLibCheck: true,
        paths: { tidemark: [join(ROOT, 'dist', 'index.d.ts')] },
      },
      include: ['*.mts', '*.cts'],
    };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], { encoding: 'utf8' });
    // Errors name the example's page and line, not the temporary file.
    const errors = `${r.stdout}${r.stderr}`.replace(/[\w.]+\.[mc]ts/g, (f) => names.get(f) ?? f);
    assert.is(r.status, 0, errors);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
