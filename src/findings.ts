// What verify reports, as pure functions of the ledger, the files and schema differences. No I/O here.
import kleur from 'kleur';
import { printable } from './printable.js';
import type { Checksums, Migration } from './files.js';
import { currentVersion, dirtyResolution, editedFiles, notInRelease, type LedgerRow } from './plan.js';
import type { Difference } from './schema.js';

/** The checks of `verify`, in the order they are reported. */
export const CHECKS = ['pending', 'expected-version', 'missing-file', 'checksum', 'dirty', 'rollback-file', 'drift', 'rollbacks'] as const;
export type CheckName = (typeof CHECKS)[number];

export interface Finding {
  check: CheckName;
  message: string;
  /** One line per item: a migration, a file, a schema difference. */
  details: string[];
  /** What a person does about it. */
  fix: string;
  /** The versions it is about. */
  versions: number[];
  /** drift and rollbacks: the differences as data (`details` holds their lines). */
  differences?: Difference[];
}

export interface VerifyReport {
  database: string;
  version: number;
  /** SCHEMA_VERSION, when set. */
  expectedVersion: number | null;
  /** What the live schema was compared with, or why it could not be. */
  baseline: { source: 'snapshot' | 'files'; description: string } | { source: 'none'; reason: string };
  /** With --rollbacks: how many rollbacks were proven on a scratch database; null without. */
  rollbacksProven: number | null;
  findings: Finding[];
  ok: boolean;
}

export interface LedgerFacts {
  migrations: Migration[];
  ledger: LedgerRow[];
  /** The current checksums of each applied version's files. */
  checksums: Checksums;
  expectedVersion: number | null;
}

/** Every finding that the ledger and the files alone show. */
export function ledgerFindings(facts: LedgerFacts): Finding[] {
  return [pending, expectedVersion, missingFiles, changedFiles, dirtyRows, missingRollbacks].map((check) => check(facts)).filter((f): f is Finding => f !== null);
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

function pending({ migrations, ledger }: LedgerFacts): Finding | null {
  const applied = new Set(ledger.map((r) => r.version));
  const waiting = migrations.filter((m) => !applied.has(m.version));
  if (waiting.length === 0) return null;
  return {
    check: 'pending',
    message: `${plural(waiting.length, 'migration is', 'migrations are')} pending`,
    details: waiting.map((m) => `${m.versionText} ${m.name}`),
    fix: 'run `tidemark migrate` (npm run migrate)',
    versions: waiting.map((m) => m.version),
  };
}

function expectedVersion({ migrations, ledger, expectedVersion: expected }: LedgerFacts): Finding | null {
  const current = currentVersion(ledger);
  if (expected === null || expected === current) return null;
  const known = expected === 0 || migrations.some((m) => m.version === expected);
  return {
    check: 'expected-version',
    message: `the database is at version ${current}, but SCHEMA_VERSION expects ${expected}`,
    details: [],
    fix:
      current < expected
        ? known
          ? `run \`tidemark migrate ${expected}\``
          : `no migration file has version ${expected} here: deploy the files of the release that expects it, or correct SCHEMA_VERSION`
        : `the database is ahead of this release: deploy the release that expects ${current}, or run \`tidemark rollback --to ${expected}\``,
    versions: [expected],
  };
}

function missingFiles({ migrations, ledger }: LedgerFacts): Finding | null {
  const orphans = notInRelease(migrations, ledger);
  if (orphans.length === 0) return null;
  return {
    check: 'missing-file',
    message: `${plural(orphans.length, 'applied version is', 'applied versions are')} not in this release: no migration file`,
    details: orphans.map((r) => `version ${r.version} (${r.name})${r.rollbackChecksum ? ': its rollback is stored in the ledger' : ''}`),
    fix:
      'deploy the release that has the files, or undo them with `tidemark rollback` (it runs the rollback stored in the ledger when the file is gone); ' +
      'for an abandoned migration with nothing stored, undo its changes by hand and run `tidemark force <version> --yes`',
    versions: orphans.map((r) => r.version),
  };
}

function changedFiles({ migrations, ledger, checksums }: LedgerFacts): Finding | null {
  const edited = editedFiles(migrations, ledger, checksums);
  if (edited.length === 0) return null;
  return {
    check: 'checksum',
    message: `${plural(edited.length, 'applied migration file was', 'applied migration files were')} edited after the migration ran`,
    details: edited.map(({ file, versionText }) => `${file.path}: checksum differs from the one recorded when ${versionText} was applied`),
    fix: 'restore the files as they were applied (git checkout) and put the change in a new migration (`tidemark create <name>`); for a harmless edit such as a comment, or a fixed rollback file, `tidemark migrate --allow-changed` records the new checksum (and the rollback\'s new text)',
    versions: [...new Set(edited.map((e) => e.version))],
  };
}

function dirtyRows({ ledger }: LedgerFacts): Finding | null {
  const dirty = ledger.filter((r) => r.dirty);
  if (dirty.length === 0) return null;
  return {
    check: 'dirty',
    message: `${plural(dirty.length, 'version is', 'versions are')} dirty: a no-transaction migration started and did not finish`,
    details: dirty.map((r) => `version ${r.version} (${r.name})`),
    fix: dirtyResolution(ledger, dirty[0]!.version),
    versions: dirty.map((r) => r.version),
  };
}

function missingRollbacks({ migrations }: LedgerFacts): Finding | null {
  const without = migrations.filter((m) => !m.rollback);
  if (without.length === 0) return null;
  return {
    check: 'rollback-file',
    message: `${plural(without.length, 'migration has', 'migrations have')} no rollback file`,
    details: without.map((m) => `${m.forward.path}: write ${m.versionText}_${m.name}_rollback.sql`),
    fix: 'write each rollback file named above so that it undoes its migration; `tidemark verify --rollbacks` proves that it does',
    versions: without.map((m) => m.version),
  };
}

/**
 * Why the expected schema cannot be rebuilt from the files, or null when it can: that needs exactly
 * the applied versions, each with its file.
 */
export function rebuildObstacle(migrations: Migration[], ledger: LedgerRow[]): string | null {
  const current = currentVersion(ledger);
  const files = new Set(migrations.map((m) => m.version));
  const applied = new Set(ledger.map((r) => r.version));
  const orphan = ledger.find((r) => !files.has(r.version));
  if (orphan) return `version ${orphan.version} is applied but has no file to rebuild it from`;
  const skipped = migrations.find((m) => m.version < current && !applied.has(m.version));
  if (skipped) return `${skipped.versionText} ${skipped.name} is below the current version ${current} but not applied`;
  return null;
}

export function driftFinding(differences: Difference[], baseline: string, version: number): Finding {
  return {
    check: 'drift',
    message: `the schema differs from ${baseline} (+ only in the database, - missing from it, ~ changed)`,
    details: differences.map((d) => d.line),
    fix:
      `undo the changes by hand, or put them in a new migration (\`tidemark create <name>\`) so that every database gets them; ` +
      `if this database is right as it is, \`tidemark force ${version} --yes\` records its schema as the expected one`,
    versions: [version],
    differences,
  };
}

export function rollbackFinding(migration: Migration, differences: Difference[]): Finding {
  return {
    check: 'rollbacks',
    message: `the rollback of ${migration.versionText} ${migration.name} does not restore the schema it started from (+ left behind, - removed, ~ changed)`,
    details: differences.map((d) => d.line),
    fix: `make ${migration.rollback?.path ?? 'the rollback file'} undo everything ${migration.forward.path} does`,
    versions: [migration.version],
    differences,
  };
}

/** A step that failed on a scratch database: the migrations do not build, or a rollback does not run. */
export function scratchFailure(check: 'drift' | 'rollbacks', what: string, migration: Migration | null, error: { message: string; context: string[]; hint?: string }): Finding {
  return {
    check,
    message: `${what} failed on the scratch database: ${error.message}`,
    details: error.context,
    fix: error.hint ?? 'fix the file named above; every migration must run on a database built by the migrations before it',
    versions: migration ? [migration.version] : [],
  };
}

/** What each check says when it holds. */
function passed(check: CheckName, report: VerifyReport): string | null {
  switch (check) {
    case 'pending':
      return 'nothing pending';
    case 'expected-version':
      return report.expectedVersion === null ? null : `version ${report.version} is the one SCHEMA_VERSION expects`;
    case 'missing-file':
      return 'every applied version has its file';
    case 'checksum':
      return 'no applied file was edited';
    case 'dirty':
      return 'no dirty version';
    case 'rollback-file':
      return 'every migration has a rollback file';
    case 'drift':
      return report.baseline.source === 'none' ? null : `the schema matches ${report.baseline.description}`;
    case 'rollbacks':
      return report.rollbacksProven === null ? null : `every rollback undoes its migration (${plural(report.rollbacksProven, 'rollback', 'rollbacks')} proven on a scratch database)`;
  }
}

/** The report as lines for a person: each check that holds, each finding with its details and fix, a total. */
export function formatVerifyReport(report: VerifyReport, quiet = false): string[] {
  const lines = quiet ? [] : [`verify ${report.database} at version ${report.version}`];
  for (const check of CHECKS) {
    const found = report.findings.filter((f) => f.check === check);
    for (const f of found) {
      const details = f.details.map((d) => `  ${printable(d)}`);
      lines.push(`${kleur.red('✗')} ${printable(f.message)}`, ...details);
      lines.push(`  ${kleur.cyan('fix:')} ${printable(f.fix)}`);
    }
    const ok = found.length === 0 ? passed(check, report) : null;
    if (ok && !quiet) lines.push(`${kleur.green('✓')} ${ok}`);
    if (check === 'drift' && report.baseline.source === 'none') lines.push(`${kleur.yellow('?')} the schema was not compared: ${report.baseline.reason}`);
  }
  lines.push(report.ok ? 'verified: the database is what the migration files say' : `verify found ${plural(report.findings.length, 'problem', 'problems')}`);
  return lines;
}
