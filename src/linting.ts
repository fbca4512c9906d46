// Runs the lock-hazard lint (src/lint/, pure) over loaded migration scripts: parses PostgreSQL files
// with the server's own grammar, asks the sqlite3 package which SQLite will run them, and formats
// the findings for people, for --json and for CI annotations (GitHub's `::warning` lines).
import { performance } from 'node:perf_hooks';
import { installedSqliteVersion } from './drivers/sqlite-version.js';
import type { Dialect } from './files.js';
import type { Script } from './script.js';
import { lintFile, type Finding } from './lint/index.js';
import { parsePostgresTrees } from './sql/postgres-parser.js';
import { lexPostgres } from './sql/postgres-lexer.js';
import { lexSqlite } from './sql/sqlite-lexer.js';
import { printable } from './printable.js';

export type { Finding } from './lint/index.js';

export interface LintSettings {
  /** migrate sets a lock_timeout itself (--pg-lock-timeout), so files need not. */
  lockTimeoutConfigured: boolean;
}

export interface LintResult {
  findings: Finding[];
  /** The files linted, as shown to people. */
  files: string[];
  ms: number;
}

/**
 * The findings of each script on the dialect's rules, in file order. A file the parser rejects has none:
 * the server will refuse it.
 */
export async function lintScripts(scripts: Script[], dialect: Dialect, settings: LintSettings): Promise<LintResult> {
  const started = performance.now();
  const findings: Finding[] = [];
  const sqliteVersion = dialect === 'sqlite' && scripts.length > 0 ? await installedSqliteVersion() : null;
  for (const script of scripts) {
    const { text, noTransaction, statements } = script;
    const path = script.file.path;
    if (dialect === 'sqlite') {
      const { tokens } = lexSqlite(text);
      findings.push(...lintFile({ path, text, tokens, noTransaction, dialect, statements, sqliteVersion }));
      continue;
    }
    const { tokens } = lexPostgres(text);
    const trees = await parsePostgresTrees(text, tokens);
    const { lockTimeoutConfigured } = settings;
    if (trees) findings.push(...lintFile({ path, text, tokens, noTransaction, dialect, trees, lockTimeoutConfigured }));
  }
  return { findings, files: scripts.map((s) => s.file.path), ms: performance.now() - started };
}

/** `sql/005_x.sql:3:1: [rule] why` and, indented, the safe pattern. */
export function findingLines(finding: Finding): string[] {
  const { file, line, column, rule } = finding;
  return [printable(`${file}:${line}:${column}: [${rule}] ${finding.message}`), `  safe: ${finding.safe}`];
}

/** A GitHub Actions workflow command: the finding shows as an annotation on the file's line. */
export function githubAnnotation(finding: Finding): string {
  const property = (value: string) => escapeData(value).replace(/:/g, '%3A').replace(/,/g, '%2C');
  const { file, line, column, rule } = finding;
  const where = `file=${property(file)},line=${line},col=${column},title=${property(`tidemark ${rule}`)}`;
  return printable(`::warning ${where}::${escapeData(`${finding.message}. Safe: ${finding.safe}`)}`);
}

function escapeData(value: string): string {
  return value.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** The same finding reached through two dialects' plans (a portable file) is reported once. */
export function distinctFindings(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.file}:${f.line}:${f.column}:${f.rule}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
