// `tidemark import`: another migrator's folder written as tidemark files and, with a database URL,
// its ledger adopted into tidemark's. The other tool's table is only read.
import { join } from 'node:path';
import type { Driver } from '../drivers/driver.js';
import { UsageError } from '../errors.js';
import { discover } from '../files.js';
import { recordApplied } from '../ledger/record.js';
import { planAdopt, type LedgerRow } from '../plan.js';
import type { Session } from '../run/session.js';
import { convert, SOURCE_FORMATS, type Conversion, type ConvertedFile, type SourceFormat } from './convert.js';
import { filesToWrite, readSourceFolder, removeWritten, writeConverted } from './folder.js';
import { appliedByTool, FOREIGN_LEDGERS, foreignTableName, versionsToAdopt } from './ledgers.js';
import type { Version } from '../version.js';

export interface ImportOptions {
  /** Only convert the files, even when a database URL is configured (else its ledger is adopted too). */
  filesOnly?: boolean;
  /** The other tool's ledger table, when the project renamed it (dbmate --migrations-table, goose -table). */
  table?: string;
  dryRun?: boolean;
}

/** What `import` converted, wrote and recorded, and every source file it did not convert, with why. */
export interface ImportResult extends Conversion {
  /** The migrations folder written into. */
  dir: string;
  /** Paths written ([] on a dry run). */
  written: string[];
  /** Paths that existed already with the same bytes (a second database adopted from the committed folder). */
  kept: string[];
  /** The versions recorded (with --dry-run: that would be) from the other tool's ledger; null without adopt. */
  adopted: { database: string; table: string; versions: Version[] } | null;
  dryRun: boolean;
}

/** Converts the folder, then writes it and (with a database URL) adopts the ledger; see {@link Migrator.import}. */
export async function importFolder(
  session: Session,
  format: SourceFormat,
  source: string,
  options: ImportOptions,
): Promise<ImportResult> {
  const { cwd } = session.config;
  const { dir } = session;
  const dryRun = Boolean(options.dryRun);
  const conversion = convert(format, readSourceFolder(source, cwd));
  if (conversion.files.length === 0) {
    throw new UsageError(`found no ${format} migration to convert in ${source}`, {
      context: conversion.skipped.slice(0, 10).map((s) => `${s.path}: ${s.reason}`),
      hint: `check the folder and --from (one of ${SOURCE_FORMATS.join(', ')})`,
    });
  }
  const toWrite = filesToWrite(conversion.files, dir, cwd);
  const kept = conversion.files.filter((f) => !toWrite.includes(f)).map((f) => join(dir, f.fileName));
  const result: ImportResult = { ...conversion, dir, written: [], kept, adopted: null, dryRun };
  if (options.filesOnly || !session.config.url)
    return { ...result, written: dryRun ? [] : writeImported(session, toWrite) };
  // The other tool's ledger must be there already: a missing database is an error, not created empty.
  return session.withDriver(session.target(), { create: false, lock: !dryRun }, async ({ driver }) => {
    const { versions, adopted } = await ledgerToAdopt(driver, format, conversion, options);
    if (dryRun) return { ...result, adopted };
    const written = writeImported(session, toWrite);
    try {
      const { migrations } = session.migrations();
      const plan = (ledger: LedgerRow[]) => planAdopt(migrations, ledger, versions);
      if (versions.length > 0) await recordApplied(driver, plan, 'import', versions.at(-1)!);
    } catch (error) {
      removeWritten(written, cwd);
      throw error;
    }
    return { ...result, written, adopted };
  });
}

/** The versions the other tool applied, checked against the files and tidemark's (empty) ledger. */
async function ledgerToAdopt(
  driver: Driver,
  format: SourceFormat,
  conversion: Conversion,
  options: ImportOptions,
): Promise<{ versions: Version[]; adopted: NonNullable<ImportResult['adopted']> }> {
  const defaults = FOREIGN_LEDGERS[format];
  const spec = { ...defaults, table: foreignTableName(options.table ?? defaults.table) };
  const rows = await driver.readForeignTable(spec);
  if (!rows) {
    const what = `${driver.description} has no ${spec.table} table, so there is no ${format} ledger to adopt`;
    throw new UsageError(`${what}; nothing was written`, {
      hint: 'check --url; to convert the files without adopting a ledger, run the same command with --files-only',
    });
  }
  const versions = versionsToAdopt(appliedByTool(format, rows, spec.table), conversion, driver.dialect, spec.table);
  planAdopt([], await driver.readLedger(), versions);
  return { versions, adopted: { database: driver.description, table: spec.table, versions } };
}

/** Writes the converted files; if the folder as a whole is not a valid migrations folder then, removes them again. */
function writeImported(session: Session, files: ConvertedFile[]): string[] {
  const { cwd } = session.config;
  const written = writeConverted(files, session.dir, cwd);
  try {
    discover(session.dir, cwd);
  } catch (error) {
    removeWritten(written, cwd);
    throw error;
  }
  return written;
}
