// Following tidemark's own advice never leads to a wrong ledger (issue 12, items 3, 4, 6 and 7), on
// both dialects, through the CLI: dirty rows resolved by `resolve` with the right meaning for the
// direction, irreversible migrations refused up front, rollback in apply order, and flags that npm
// swallowed refused before the database is touched.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BASE, CLI, DIALECTS, dispose, ledgerVersions, project, removeSql, writeSql } from './helpers.mjs';

/** Version 2 runs outside a transaction and fails at its second statement: the first one stays. */
const FAILING_NT = {
  '002_half.sql': '-- tidemark:no-transaction\nCREATE TABLE half (a INTEGER);\nCREAT TABLE never (a INTEGER);\n',
  '002_half_rollback.sql': 'DROP TABLE half;\n',
};

const isDirty = (r) => r.dirty === true || Number(r.dirty) === 1;
const ledger = async (db) =>
  (await db.query('select version, dirty, dirty_action from schema_version order by version')).map((r) =>
    isDirty(r) ? `${Number(r.version)}:dirty-${r.dirty_action}` : String(Number(r.version)),
  );
const lastHistory = async (db) =>
  (await db.query('select action, version from schema_version_history order by id desc limit 1'))[0];

for (const dialect of DIALECTS) {
  const test = suite(`hints lead to the right ledger [${dialect}]`);

  // ---- item 3: dirty rows, resolved by a precise command ---------------------------------------
  test('a failed no-transaction migration: every hint names resolve for an up, none force; --not-applied deletes only its row', async () => {
    const p = await project(dialect, { ...BASE, ...FAILING_NT });
    try {
      const failed = p.cli('migrate');
      assert.is(failed.code, 1, failed.output);
      assert.equal(await ledger(p.db), ['1', '2:dirty-up']);
      const hints = [failed.stderr];
      for (const args of [['migrate'], ['rollback']]) {
        const r = p.cli(...args);
        assert.is(r.code, 2, `${args}: ${r.output}`);
        hints.push(r.stderr);
      }
      const status = p.cli('status');
      assert.is(status.code, 0, status.output);
      hints.push(status.output);
      const verify = p.cli('verify');
      assert.is(verify.code, 3, verify.output);
      hints.push(verify.stdout);
      for (const hint of hints) {
        assert.match(hint, /`tidemark resolve 002 --applied` if the migration took effect/);
        assert.match(hint, /`tidemark resolve 002 --not-applied` if it did not/);
        assert.not.match(hint, /force/, hint);
      }
      const bare = p.cli('resolve', '2');
      assert.is(bare.code, 2, bare.output);
      assert.match(bare.stderr, /--applied or --not-applied/);
      const dry = p.cli('resolve', '2', '--not-applied', '--dry-run');
      assert.is(dry.code, 0, dry.output);
      assert.equal(await ledger(p.db), ['1', '2:dirty-up'], 'a dry run changes nothing');
      const resolved = p.cli('resolve', '2', '--not-applied');
      assert.is(resolved.code, 0, resolved.output);
      assert.match(resolved.stdout, /deleted the row of version 2/);
      assert.equal(await ledger(p.db), ['1']);
      assert.equal(await lastHistory(p.db), { action: 'resolve', version: dialect === 'postgres' ? '2' : 2 });
      await p.db.query('DROP TABLE half');
      writeSql(p.cwd, '002_half.sql', '-- tidemark:no-transaction\nCREATE TABLE half (a INTEGER);\n');
      assert.is(p.cli('migrate', '--allow-changed').code, 0);
      assert.equal(await ledger(p.db), ['1', '2']);
    } finally {
      await dispose(p);
    }
  });

  test('resolve --applied on a dirty up keeps the row and clears it; a clean or unknown version is refused', async () => {
    const p = await project(dialect, { ...BASE, ...FAILING_NT });
    try {
      assert.is(p.cli('migrate').code, 1);
      for (const args of [
        ['resolve', '1', '--applied'],
        ['resolve', '9', '--applied'],
        ['resolve', '2', '--applied', '--not-applied'],
      ]) {
        const r = p.cli(...args);
        assert.is(r.code, 2, `${args}: ${r.output}`);
      }
      assert.match(p.cli('resolve', '1', '--applied').stderr, /version 1 is not dirty/);
      assert.equal(await ledger(p.db), ['1', '2:dirty-up'], 'refusals change nothing');
      const r = p.cli('resolve', '2', '--applied');
      assert.is(r.code, 0, r.output);
      assert.match(r.stdout, /version 2 is now recorded as applied/);
      assert.equal(await ledger(p.db), ['1', '2']);
    } finally {
      await dispose(p);
    }
  });

  test('a failed no-transaction rollback is a dirty down: --not-applied keeps the row, --applied deletes it', async () => {
    const p = await project(dialect, {
      ...BASE,
      '002_t2.sql': 'CREATE TABLE t2 (a INTEGER);\n',
      '002_t2_rollback.sql': '-- tidemark:no-transaction\nDROP TABLE t2;\nDROP TABLE no_such_table;\n',
    });
    try {
      assert.is(p.cli('migrate').code, 0);
      const failed = p.cli('rollback');
      assert.is(failed.code, 1, failed.output);
      assert.equal(await ledger(p.db), ['1', '2:dirty-down']);
      for (const hint of [failed.stderr, p.cli('migrate').stderr, p.cli('verify').stdout]) {
        assert.match(
          hint,
          /`tidemark resolve 002 --applied` if the rollback took effect \(deletes the row of version 002 only\)/,
        );
        assert.match(hint, /`tidemark resolve 002 --not-applied` if it did not \(keeps version 002 applied\)/);
        assert.not.match(hint, /force/);
      }
      const kept = p.cli('resolve', '2', '--not-applied');
      assert.is(kept.code, 0, kept.output);
      assert.equal(await ledger(p.db), ['1', '2']);
      await p.db.query('CREATE TABLE t2 (a INTEGER)');
      assert.is(p.cli('rollback').code, 1, 'the rollback still fails');
      const undone = p.cli('resolve', '2', '--applied');
      assert.is(undone.code, 0, undone.output);
      assert.equal(await ledger(p.db), ['1']);
    } finally {
      await dispose(p);
    }
  });

  test('a dirty out-of-order version: the hint deletes only its row, never the rows above it', async () => {
    const p = await project(dialect, {
      ...BASE,
      '003_t3.sql': 'CREATE TABLE t3 (a INTEGER);\n',
      '003_t3_rollback.sql': 'DROP TABLE t3;\n',
    });
    try {
      assert.is(p.cli('migrate').code, 0);
      for (const [name, text] of Object.entries(FAILING_NT)) writeSql(p.cwd, name, text);
      const failed = p.cli('migrate', '--allow-out-of-order');
      assert.is(failed.code, 1, failed.output);
      assert.equal(await ledger(p.db), ['1', '2:dirty-up', '3']);
      assert.match(
        failed.stderr,
        /`tidemark resolve 002 --not-applied` if it did not \(deletes the row of version 002 only\)/,
      );
      assert.not.match(failed.stderr, /force 1/);
      assert.is(p.cli('resolve', '2', '--not-applied').code, 0);
      assert.equal(await ledger(p.db), ['1', '3']);
    } finally {
      await dispose(p);
    }
  });

  test('force says which rows it deletes, before (the refusal without --yes) and after', async () => {
    const p = await project(dialect, {
      ...BASE,
      '002_b.sql': 'SELECT 1;\n',
      '002_b_rollback.sql': 'SELECT 1;\n',
      '003_c.sql': 'SELECT 1;\n',
      '003_c_rollback.sql': 'SELECT 1;\n',
    });
    try {
      assert.is(p.cli('migrate').code, 0);
      const refused = p.cli('force', '1');
      assert.is(refused.code, 2, refused.output);
      assert.match(refused.stderr, /force 1 deletes the ledger rows of versions 2, 3/);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3]);
      const forced = p.cli('force', '1', '--yes');
      assert.is(forced.code, 0, forced.output);
      assert.match(forced.stdout, /deleted the rows of versions 2, 3/);
      assert.equal(await ledgerVersions(p.db), [1]);
    } finally {
      await dispose(p);
    }
  });

  // ---- item 4: irreversible on purpose -----------------------------------------------------------
  const IRREVERSIBLE = {
    ...BASE,
    '002_t2.sql': 'CREATE TABLE t2 (a INTEGER);\n',
    '002_t2_rollback.sql': '-- there is no way back: t2 holds data we cannot rebuild\n',
    '003_t3.sql': 'CREATE TABLE t3 (a INTEGER);\n',
    '003_t3_rollback.sql': 'DROP TABLE t3;\n',
  };

  test('an empty rollback of a real migration is irreversible: rollback across it refuses up front, nothing changed', async () => {
    const p = await project(dialect, IRREVERSIBLE);
    try {
      assert.is(p.cli('migrate').code, 0);
      for (const args of [
        ['rollback', '--all'],
        ['rollback', '--to', '1'],
        ['rollback', '2'],
        ['sql', '--all'],
      ]) {
        const r = p.cli(...args);
        assert.is(r.code, 2, `${args}: ${r.output}`);
        assert.match(r.stderr, /sql\/002_t2_rollback\.sql: .*irreversible/);
        assert.match(r.stderr, /nothing was changed/);
        assert.equal(await ledgerVersions(p.db), [1, 2, 3], `${args} changed nothing`);
      }
      assert.ok((await p.db.tables()).includes('t3'));
      const one = p.cli('rollback');
      assert.is(one.code, 0, one.output);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
      assert.is(p.cli('rollback').code, 2);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
      assert.ok((await p.db.tables()).includes('t2'), 'the table stays');
    } finally {
      await dispose(p);
    }
  });

  test('-- tidemark:irreversible marks it too; verify lists it as a decision and exits 0; --rollbacks skips and counts it', async () => {
    const p = await project(dialect, {
      ...IRREVERSIBLE,
      '002_t2_rollback.sql': '-- tidemark:irreversible\nDROP TABLE t2;\n',
    });
    try {
      assert.is(p.cli('migrate').code, 0);
      const r = p.cli('rollback', '--to', '1');
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, /sql\/002_t2_rollback\.sql: marked -- tidemark:irreversible/);
      const verify = p.cli('verify');
      assert.is(verify.code, 0, verify.output);
      assert.match(
        verify.stdout,
        /irreversible on purpose: 002 t2 \(sql\/002_t2_rollback\.sql: marked -- tidemark:irreversible\)/,
      );
      const json = JSON.parse(p.cli('verify', '--json').stdout);
      assert.equal(
        json.irreversible.map((i) => i.version),
        [2],
      );
      const proof = p.cli('verify', '--rollbacks');
      assert.is(proof.code, 0, proof.output);
      assert.match(proof.stdout, /rollbacks: 2 proven, 0 lossy, 0 failed, 1 irreversible, 0 unchecked/);
      assert.match(proof.stdout, /002 t2: irreversible: skipped/);
      const forwardMarked = p.cli('migrate');
      assert.is(forwardMarked.code, 0);
      writeSql(p.cwd, '004_d.sql', '-- tidemark:irreversible\nCREATE TABLE t4 (a INTEGER);\n');
      const wrong = p.cli('migrate');
      assert.is(wrong.code, 2, wrong.output);
      assert.match(wrong.stderr, /sql\/004_d\.sql:1: .*belongs in the rollback file/);
    } finally {
      await dispose(p);
    }
  });

  test('an empty pair is a harmless no-op; an empty forward is applied with a warning; the untouched create template is refused', async () => {
    const p = await project(dialect, {
      ...BASE,
      '002_placeholder.sql': '-- only for the other dialect\n',
      '002_placeholder_rollback.sql': '',
    });
    try {
      const up = p.cli('migrate');
      assert.is(up.code, 0, up.output);
      assert.match(up.stderr, /warning: sql\/002_placeholder\.sql has no statement/);
      const down = p.cli('rollback');
      assert.is(down.code, 0, down.output);
      assert.equal(await ledgerVersions(p.db), [1]);
      removeSql(p.cwd, '002_placeholder.sql');
      removeSql(p.cwd, '002_placeholder_rollback.sql');
      assert.is(p.cli('create', 'add_orders').code, 0);
      const template = p.cli('migrate');
      assert.is(template.code, 2, template.output);
      assert.match(
        template.stderr,
        /sql\/002_add_orders\.sql is still the template `tidemark create` wrote: write the migration or delete the file/,
      );
      assert.equal(await ledgerVersions(p.db), [1]);
      assert.is(p.cli('sql').code, 2, 'the script refuses it too');
    } finally {
      await dispose(p);
    }
  });

  // ---- item 7: rollback follows the apply order --------------------------------------------------
  test('rollback undoes the newest applied migration, not the highest version; --to refuses across an out-of-order one', async () => {
    const p = await project(dialect, {
      ...BASE,
      '003_t3.sql': 'CREATE TABLE t3 (a INTEGER);\n',
      '003_t3_rollback.sql': 'DROP TABLE t3;\n',
    });
    const columns = async () =>
      (dialect === 'postgres'
        ? await p.db.query(
            `select column_name as name from information_schema.columns where table_name = 't3' order by 1`,
          )
        : await p.db.query(`select name from pragma_table_info('t3') order by 1`)
      ).map((r) => r.name);
    try {
      assert.is(p.cli('migrate').code, 0);
      writeSql(p.cwd, '002_t3_b.sql', 'ALTER TABLE t3 ADD COLUMN b INTEGER;\n');
      writeSql(p.cwd, '002_t3_b_rollback.sql', 'ALTER TABLE t3 DROP COLUMN b;\n');
      assert.is(p.cli('migrate', '--allow-out-of-order').code, 0);
      assert.equal(await columns(), ['a', 'b']);
      const one = p.cli('rollback');
      assert.is(one.code, 0, one.output);
      assert.match(one.stdout, /002 t3_b/);
      assert.equal(await ledgerVersions(p.db), [1, 3]);
      assert.equal(await columns(), ['a'], '002 was undone, 003 stays');
      assert.is(p.cli('migrate', '--allow-out-of-order').code, 0);
      const across = p.cli('rollback', '--to', '2');
      assert.is(across.code, 2, across.output);
      assert.match(across.stderr, /version 002 was applied after 003/);
      assert.match(across.stderr, /tidemark rollback 2/);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3], 'nothing was changed');
      const both = p.cli('rollback', '--to', '1');
      assert.is(both.code, 0, both.output);
      assert.ok(both.stdout.indexOf('002 t3_b') < both.stdout.indexOf('003 t3'), 'newest applied first');
      assert.equal(await ledgerVersions(p.db), [1]);
      assert.not.ok((await p.db.tables()).includes('t3'));
    } finally {
      await dispose(p);
    }
  });

  test.run();
}

// ---- item 6: flags npm swallowed -------------------------------------------------------------------
const npm = suite('flags npm swallowed are refused before the database is touched');

/** A project whose npm scripts run the built CLI, and `tidemark` linked where npx finds it. */
function npmProject(files, npmrc) {
  const cwd = mkdtempSync(join(tmpdir(), 'tidemark-npm-'));
  const scripts = {
    migrate: 'migrate',
    'migrate:rollback': 'rollback',
    'migrate:force-version': 'force',
    'migrate:resolve': 'resolve',
  };
  const pkg = {
    name: 'app',
    version: '1.0.0',
    private: true,
    scripts: Object.fromEntries(Object.entries(scripts).map(([k, v]) => [k, `node ${JSON.stringify(CLI)} ${v}`])),
  };
  writeFileSync(join(cwd, 'package.json'), JSON.stringify(pkg));
  if (npmrc) writeFileSync(join(cwd, '.npmrc'), npmrc);
  mkdirSync(join(cwd, 'sql'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, 'sql', name), text);
  mkdirSync(join(cwd, 'node_modules', '.bin'), { recursive: true });
  // What npm install makes of package.json's bin: an executable that runs the CLI.
  writeFileSync(
    join(cwd, 'node_modules', '.bin', 'tidemark'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`,
    { mode: 0o755 },
  );
  return cwd;
}

function npmCommand(cwd, url, args, env = {}) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('npm_') && !['DATABASE_URL', 'TEST_DATABASE_URL'].includes(k),
    ),
  );
  const r = spawnSync(args[0], args.slice(1), {
    cwd,
    env: { ...clean, NO_COLOR: '1', DATABASE_URL: url, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, output: r.stdout + r.stderr };
}

const TWO = { ...BASE, '002_b.sql': 'CREATE TABLE b (a INTEGER);\n', '002_b_rollback.sql': 'DROP TABLE b;\n' };

for (const dialect of DIALECTS) {
  npm(
    `${dialect}: npm run migrate --dry-run exits 2 naming the corrected command and applies nothing; migrate then runs`,
    async () => {
      const p = await project(dialect, {});
      const cwd = npmProject(TWO);
      try {
        const dry = npmCommand(cwd, p.db.url, ['npm', 'run', 'migrate', '--dry-run']);
        assert.is(dry.code, 2, dry.output);
        assert.match(dry.stderr, /npm took --dry-run for itself/);
        assert.match(dry.stderr, /npm run migrate -- --dry-run/);
        assert.equal(await ledgerVersions(p.db), [], 'nothing was applied');
        assert.is(npmCommand(cwd, p.db.url, ['npm', 'run', 'migrate']).code, 0);
        assert.equal(await ledgerVersions(p.db), [1, 2]);
      } finally {
        await dispose(p);
        rmSync(cwd, { recursive: true, force: true });
      }
    },
  );
}

npm('a bare `migrate` (run without the command line parser) refuses each of its options that npm kept', () => {
  const cwd = npmProject(TWO);
  try {
    const help = spawnSync(process.execPath, [CLI, 'migrate', '--help'], { cwd, encoding: 'utf8' });
    const options = [...help.stdout.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]);
    assert.ok(options.includes('dry-run') && options.includes('url') && options.length > 20, help.stdout);
    for (const option of options) {
      const variable = `npm_config_${option.replace(/-/g, '_')}`;
      const env = { npm_command: 'run', npm_lifecycle_event: 'migrate', [variable]: 'true' };
      const r = npmCommand(cwd, `sqlite:${join(cwd, 'never.db')}`, [process.execPath, CLI, 'migrate'], env);
      assert.is(r.code, 2, `${option}: ${r.output}`);
      assert.match(r.stderr, `npm took --${option} for itself`);
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

npm(
  'rollback through npm: --dry-run, --all and --to refused; after --, npx --yes, .npmrc and CI settings all work',
  async () => {
    const p = await project('sqlite', {});
    const cwd = npmProject(TWO, 'yes=true\njson=false\n');
    const run = (args, env) => npmCommand(cwd, p.db.url, args, env);
    try {
      assert.is(run(['npm', 'run', 'migrate']).code, 0, "yes=true in .npmrc is npm's setting");
      for (const [flags, corrected] of [
        [['--dry-run'], '-- --dry-run'],
        [['--to', '1'], '-- --to 1'],
        [['--dry-run', '--all'], '-- --dry-run --all'],
      ]) {
        const r = run(['npm', 'run', 'migrate:rollback', ...flags]);
        assert.is(r.code, 2, `${flags}: ${r.output}`);
        assert.match(r.stderr, `npm run migrate:rollback ${corrected}`);
        assert.equal(await ledgerVersions(p.db), [1, 2], `${flags}: nothing was rolled back`);
      }
      const passed = run(['npm', 'run', 'migrate:rollback', '--', '--dry-run']);
      assert.is(passed.code, 0, passed.output);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
      const npx = run(['npx', '--yes', 'tidemark', 'rollback', '--dry-run']);
      assert.is(npx.code, 0, npx.output);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
      // CI settings such as npm_config_yes=true (for npx) name no flag rollback takes.
      const ci = run(['npm', 'run', 'migrate:rollback'], { npm_config_yes: 'true' });
      assert.is(ci.code, 0, ci.output);
      assert.equal(await ledgerVersions(p.db), [1]);
    } finally {
      await dispose(p);
      rmSync(cwd, { recursive: true, force: true });
    }
  },
);

npm("a flag set in .npmrc is npm's own setting, not a swallowed flag", async () => {
  const p = await project('sqlite', {});
  const cwd = npmProject(TWO, 'dry-run=true\n');
  try {
    const r = npmCommand(cwd, p.db.url, ['npm', 'run', 'migrate']);
    assert.is(r.code, 0, r.output);
    assert.equal(await ledgerVersions(p.db), [1, 2], "migrate ran for real: .npmrc settings are npm's");
    const cli = npmCommand(cwd, p.db.url, ['npm', 'run', 'migrate:rollback', '--dry-run=false', '--all']);
    assert.is(cli.code, 2, cli.output);
    assert.match(cli.stderr, /npm run migrate:rollback -- --all/);
  } finally {
    await dispose(p);
    rmSync(cwd, { recursive: true, force: true });
  }
});

npm.run();
