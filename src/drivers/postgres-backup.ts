// PostgreSQL backups with the server's own tools: pg_dump -Fc (a consistent snapshot while the app
// writes) and pg_restore in one transaction. The password goes through PGPASSWORD, never the
// command line, where any user of the machine could read it in the process list.
import { spawn } from 'node:child_process';
import type { TableName } from '../config.js';
import { ConnectionError, UsageError } from '../errors.js';
import type { BackupTool } from './backup.js';
import { highestVersion, type Version } from '../version.js';

type Redact = (text: string) => string;

interface Connection {
  /** The URL without its password. */
  url: string;
  env: NodeJS.ProcessEnv;
}

export function postgresBackupTool(url: string, ledger: TableName, secrets: string[]): BackupTool {
  const connection = withoutPassword(url);
  const redact: Redact = (text) => secrets.reduce((t, s) => t.split(s).join('***'), text);
  // The run lock's row (--lock table) belongs to the run that takes the backup, not to the database.
  const lockTable = `${ledger.schema ? `${ledger.schema}.` : ''}${ledger.name}_lock`;
  return {
    name: decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres',
    extension: '.dump',
    backup: async (file) => {
      const args = ['-Fc', '--exclude-table-data', lockTable, '--file', file, '--dbname', connection.url];
      await tool('pg_dump', args, connection.env, redact);
    },
    check: (file, ledger) => checkDump(file, ledger, connection.env, redact),
    restore: async (file) => {
      const args = [
        '--clean',
        '--if-exists',
        '--single-transaction',
        '--exit-on-error',
        '--no-owner',
        '--dbname',
        connection.url,
        file,
      ];
      await tool('pg_restore', args, connection.env, redact);
    },
  };
}

function withoutPassword(url: string): Connection {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = '';
  const env = { ...process.env, ...(password ? { PGPASSWORD: password } : {}) };
  return { url: parsed.toString(), env };
}

/**
 * Lists the archive (pg_restore reads it through) and reads the ledger's rows out of it: the
 * version a restore brings the database back to.
 */
async function checkDump(file: string, ledger: TableName, env: NodeJS.ProcessEnv, redact: Redact): Promise<Version> {
  const list = await tool('pg_restore', ['--list', file], env, redact);
  if (!/^; Archive created at/m.test(list)) throw new Error('pg_restore lists no archive in it');
  const only = ['--data-only', '--table', ledger.name, ...(ledger.schema ? ['--schema', ledger.schema] : [])];
  return highestInDump(await tool('pg_restore', [...only, '--file', '-', file], env, redact));
}

/** The highest `version` in the COPY block of a ledger, as pg_restore prints it; 0 when there is none. */
function highestInDump(script: string): Version {
  const copy = /^COPY \S+ \(([^)]*)\) FROM stdin;\n([\s\S]*?)^\\\.$/m.exec(script);
  if (!copy) return 0n;
  const column = copy[1]!.split(', ').indexOf('version');
  const rows = copy[2]!.split('\n').filter(Boolean);
  return highestVersion(rows.map((row) => BigInt(row.split('\t')[column]!)));
}

function tool(name: string, args: string[], env: NodeJS.ProcessEnv, redact: Redact): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(name, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') return reject(error);
      reject(
        new UsageError(
          `${name} is not installed (or not on PATH): PostgreSQL backups are made with pg_dump and restored with ` +
            `pg_restore`,
          {
            hint:
              "install the PostgreSQL client tools of the server's major version or newer, e.g. `apt install " +
              'postgresql-client`',
          },
        ),
      );
    });
    child.on('close', (code) => {
      if (code === 0) return resolve(stdout);
      const message = redact(stderr.trim().split('\n').slice(0, 5).join('\n'));
      if (/server version mismatch|unsupported version/.test(stderr)) {
        const hint =
          `install the PostgreSQL client tools of the server's major version or newer (${name} is older ` +
          `than the server)`;
        return reject(new UsageError(`${name} failed: ${message}`, { hint }));
      }
      reject(
        new ConnectionError(`${name} failed: ${message}`, {
          hint: 'check that the database is reachable with these settings, then run it again',
        }),
      );
    });
  });
}
