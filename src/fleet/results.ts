// A fleet run's outcome per database, and the last report kept in logs/ for --only-failed.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError } from '../errors.js';
import type { Version } from '../version.js';

export interface DatabaseResult {
  name: string;
  state: 'ok' | 'failed' | 'not-run';
  /** The exit code the command would have had on this database alone (0 when ok, null when not run). */
  exitCode: number | null;
  /** What happened, in a few words: `applied 2, now at 5`, `at 5`, `no findings`. */
  summary: string;
  /** The version afterwards, when known. */
  version: Version | null;
  /** status: a dirty version, when one is. */
  dirty: Version | null;
  /** The error and its hint (passwords redacted), when failed. */
  error: string | null;
  ms: number;
}

interface LastReports {
  [command: string]: { at: string; results: Pick<DatabaseResult, 'name' | 'state' | 'exitCode' | 'error'>[] };
}

/** Keeps this run's outcome under its command, beside the other commands' last runs. */
export function saveLastReport(path: string, command: string, results: DatabaseResult[]): void {
  const reports = readReports(path) ?? {};
  reports[command] = {
    at: new Date().toISOString(),
    results: results.map(({ name, state, exitCode, error }) => ({ name, state, exitCode, error })),
  };
  mkdirSync(dirname(path), { recursive: true });
  // Written whole, then renamed: a run killed while writing must not leave half a report for --only-failed.
  writeFileSync(`${path}.tmp`, `${JSON.stringify(reports, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

/** --only-failed: the names the last run of this command failed on or did not reach. */
export function unfinishedNames(path: string, command: string): Set<string> {
  const report = readReports(path)?.[command];
  if (!report) {
    throw new UsageError(`--only-failed: ${path} holds no ${command} report of a fleet run`, {
      hint: `run \`tidemark ${command}\` over the fleet without --only-failed first`,
    });
  }
  return new Set(report.results.filter((r) => r.state !== 'ok').map((r) => r.name));
}

function readReports(path: string): LastReports | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  try {
    return JSON.parse(text) as LastReports;
  } catch {
    throw new UsageError(`${path} is not valid JSON`, {
      file: path,
      hint: `delete it (\`rm ${path}\`); the next fleet run writes a new one`,
    });
  }
}
