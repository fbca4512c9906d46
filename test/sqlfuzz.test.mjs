// The differential fuzz of how tidemark reads SQL files, a fast deterministic subset (the full run:
// npm run fuzz:sql): generated files of tricky tokens are migrated on the real databases, and every
// verdict must agree with what the database holds: a ledger row exactly when all the file's tables
// are there, nothing of a refused or failed file left behind.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fuzzSql, generateFile } from '../scripts/sql-fuzz.mjs';

const SUBSET = { sqlite: 300, postgres: 80 };

for (const [dialect, files] of Object.entries(SUBSET)) {
  const test = suite(`SQL text fuzz [${dialect}]`);

  test(`${files} generated files: every verdict agrees with the database`, async () => {
    const totals = await fuzzSql({ dialect, files, seed: 7, adminUrl: process.env.TEST_DATABASE_URL });
    assert.is(totals.files, files);
    assert.ok(
      totals.applied > 0 && totals.failed > 0 && totals.refused > 0,
      `every verdict was put to the test: ${JSON.stringify(totals)}`,
    );
    assert.equal(totals.disagreements, []);
  });

  test.run();
}

const generator = suite('SQL text fuzz: the generator');

generator('a seed makes the same file every time, and seeds make different files', () => {
  assert.equal(generateFile(42, 'sqlite').bytes, generateFile(42, 'sqlite').bytes);
  const texts = new Set(Array.from({ length: 50 }, (_, i) => generateFile(i, 'postgres').bytes.toString('latin1')));
  assert.ok(texts.size > 45, `${texts.size} different files of 50`);
});

generator.run();
