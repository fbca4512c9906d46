// The randomized truth check of verify, a fast deterministic subset (the full run: npm run fuzz:verify):
// random hand DDL, migrate, rollback, force, baseline and hand-run `tidemark sql` scripts, and after
// every step verify's verdict against the files of the applied versions run directly on a fresh database.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fuzzVerify } from '../scripts/verify-fuzz.mjs';

const SUBSET = { sqlite: { sequences: 4, steps: 6 }, postgres: { sequences: 2, steps: 4 } };

for (const [dialect, size] of Object.entries(SUBSET)) {
  const test = suite(`verify fuzz [${dialect}]`);

  test(`${size.sequences} random sequences: no false "verified", no false alarm`, async () => {
    const totals = await fuzzVerify({ dialect, ...size, seed: 12, adminUrl: process.env.TEST_DATABASE_URL });
    assert.is(totals.verdicts, size.sequences * size.steps);
    assert.ok(
      totals.drift > 0 && totals.clean > 0,
      `both kinds of verdict were put to the test: ${JSON.stringify(totals)}`,
    );
    assert.equal(totals.wrong, []);
  });

  test.run();
}
