// Where a fleet's databases come from: a folder pattern of SQLite files, a file of URLs, a query on a
// control database returning URLs, or a query returning PostgreSQL schemas of one database.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { parseTarget } from '../config.js';
import { UsageError } from '../errors.js';

/** One database of a fleet: a name safe to print (never a password), and the URL to connect to. */
export interface FleetMember {
  name: string;
  url: string;
}

/** What a fleet is read from, as given in `--fleet` or the project's "fleet" setting. */
export interface FleetSource {
  /** `sqlite:<folder>/<pattern>`, `urls:<file>`, `query:<sql>` or `schemas:<sql>`. */
  spec: string;
  /** The control database of query: and schemas: (`env:NAME` resolved); else unused. */
  url: string | undefined;
}

export const SOURCE_HINT =
  'use --fleet sqlite:data/tenants/*.db, --fleet urls:fleet.txt, --fleet "query:select url from tenants" ' +
  'or --fleet "schemas:select nspname from pg_namespace where nspname like \'tenant_%\'" ' +
  '(the last two on --url or DATABASE_URL)';

/** The fleet's databases in their stable order (the canary takes the first ones); names are unique. */
export async function listFleet(source: FleetSource, cwd: string, env: NodeJS.ProcessEnv): Promise<FleetMember[]> {
  const { spec } = source;
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? '' : spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  let members: FleetMember[];
  if (kind === 'sqlite') members = sqliteFolder(rest, cwd);
  else if (kind === 'urls') members = urlFile(rest, cwd, env);
  else if (kind === 'query') members = (await controlQuery(source, rest, cwd)).map((url) => memberOf(url, cwd));
  else if (kind === 'schemas') members = await schemas(source, rest, cwd);
  else throw new UsageError(`"${spec}" is not a fleet source`, { hint: SOURCE_HINT });
  if (members.length === 0) {
    throw new UsageError(`the fleet ${describeSpec(spec)} lists no databases`, {
      hint: `check the source; ${SOURCE_HINT}`,
    });
  }
  assertUniqueNames(members, spec);
  return members;
}

/** `sqlite:data/tenants/*.db`: the files of one folder whose names match; `*` and `?` in the last part only. */
function sqliteFolder(path: string, cwd: string): FleetMember[] {
  if (path.startsWith('//')) path = path.slice(2);
  const folder = dirname(path);
  const pattern = basename(path);
  if (/[*?[]/.test(folder)) {
    throw new UsageError(`the fleet pattern sqlite:${path} has a wildcard in its folder part`, {
      hint:
        'a pattern matches files of one folder, e.g. sqlite:data/tenants/*.db; ' +
        'list files of several folders in a urls: file',
    });
  }
  const matches = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  let names: string[];
  try {
    names = readdirSync(resolve(cwd, folder));
  } catch (error) {
    throw new UsageError(`the fleet folder ${folder} cannot be read: ${(error as Error).message}`, {
      hint: 'create it, or fix the path in the fleet source',
    });
  }
  // The run lock and SQLite's own side files sit beside each database; they are not databases.
  const database = (name: string) => matches.test(name) && !/(-wal|-shm|-journal|\.tidemark-lock)$/.test(name);
  return names
    .filter(database)
    .sort()
    .map((name) => {
      const url = `sqlite:${isAbsolute(folder) ? `//${folder}` : folder}/${name}`;
      return { name: `sqlite:${folder === '.' ? '' : `${folder}/`}${name}`, url };
    });
}

/** `urls:fleet.txt`: one URL (or `env:NAME`) a line; blank lines and `#` comments are skipped. */
function urlFile(file: string, cwd: string, env: NodeJS.ProcessEnv): FleetMember[] {
  let text: string;
  try {
    text = readFileSync(resolve(cwd, file), 'utf8');
  } catch (error) {
    throw new UsageError(`the fleet file ${file} cannot be read: ${(error as Error).message}`, {
      hint: 'create it with one database URL (or env:NAME) a line',
    });
  }
  return text.split(/\r?\n/).flatMap((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return [];
    const where = `${file}:${index + 1}`;
    try {
      return [memberOf(line.startsWith('env:') ? fromEnv(line.slice(4), env) : line, cwd)];
    } catch (error) {
      if (error instanceof UsageError) throw new UsageError(`${where}: ${error.message}`, { ...error.details, file });
      throw error;
    }
  });
}

/** Passwords belong in the environment: `env:TENANT_7_URL` in a committed list. */
function fromEnv(variable: string, env: NodeJS.ProcessEnv): string {
  const value = env[variable];
  if (!value)
    throw new UsageError(`takes its URL from ${variable}, which is not set`, {
      hint: `set ${variable} in the environment or .env`,
    });
  return value;
}

/** A URL's member: named by its description, which never holds a password. */
function memberOf(url: string, cwd: string): FleetMember {
  return { name: parseTarget(url, cwd).description, url };
}

async function controlQuery(source: FleetSource, query: string, cwd: string): Promise<string[]> {
  const target = parseTarget(source.url, cwd);
  const { readFirstColumn } = await import('../drivers/fleet-query.js');
  return readFirstColumn(target, query);
}

/**
 * `schemas:<query>`: every schema the query names, in the control database. Each runs with its
 * search_path set at connection (a startup parameter, so the driver's per-migration RESET ALL returns
 * to it), which makes the schema its ledger's home and its migrations' default; `tidemark.scope`
 * limits verify's schema snapshot to it.
 */
async function schemas(source: FleetSource, query: string, cwd: string): Promise<FleetMember[]> {
  const target = parseTarget(source.url, cwd);
  if (target.dialect !== 'postgres') {
    throw new UsageError('a schemas: fleet needs a PostgreSQL database', {
      hint: 'set --url (or DATABASE_URL) to the database holding the tenant schemas',
    });
  }
  const names = await controlQuery(source, query, cwd);
  return names.map((schema) => {
    const url = new URL(target.url);
    url.searchParams.set('search_path', `"${schema.replace(/"/g, '""')}"`);
    // verify's snapshot of this session then covers its own schema, not the other tenants'.
    url.searchParams.set('tidemark.scope', 'schema');
    return { name: schema, url: url.toString() };
  });
}

function assertUniqueNames(members: FleetMember[], spec: string): void {
  const seen = new Set<string>();
  for (const { name } of members) {
    if (seen.has(name)) {
      throw new UsageError(`the fleet ${describeSpec(spec)} lists ${name} twice`, {
        hint: 'list each database once: two runs on one database at once would only wait for each other',
      });
    }
    seen.add(name);
  }
}

/** The source as written, without a control URL (which may hold a password). */
function describeSpec(spec: string): string {
  return spec.length > 80 ? `${spec.slice(0, 77)}…` : spec;
}
