// `tidemark init`: adds tidemark to an existing app (npm scripts, a migrations folder, DATABASE_URL in
// .env, optionally a pm2 ecosystem file). It only adds: a value the app already has is never changed.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CONFIG_FILE } from './config.js';
import { UsageError } from './errors.js';

/** The npm scripts an app gets, and the tidemark command each runs; tidemark's own package.json has the same names. */
export const NPM_SCRIPTS: Readonly<Record<string, string>> = {
  migrate: 'migrate',
  'migrate:rollback': 'rollback',
  'migrate:status': 'status',
  'migrate:version': 'version',
  'migrate:force-version': 'force',
  'migrate:create': 'create',
  'migrate:resolve': 'resolve',
  'verify:schema': 'verify',
};

/** A database that needs no server, so the app's first `npm run migrate` works as it is. */
export const DEFAULT_DATABASE_URL = 'sqlite:data/app.db';

export interface InitOptions {
  /** Also write ecosystem.config.cjs with a commented pm2 deploy block. */
  pm2?: boolean;
  /** DATABASE_URL to write into .env when it sets none (default: a SQLite file). */
  url?: string;
  dryRun?: boolean;
}

/** One thing init did (or, with dryRun, would do), or left alone because the app already had it. */
export interface InitStep {
  action: 'added' | 'kept';
  path: string;
  what: string;
}

/** package.json with tidemark's scripts added where the app has none of that name; kept ones are reported. */
export function withScripts(packageText: string): { text: string; steps: InitStep[] } {
  const pkg = JSON.parse(packageText) as { scripts?: Record<string, string> };
  const scripts = { ...pkg.scripts };
  const steps: InitStep[] = [];
  for (const [name, command] of Object.entries(NPM_SCRIPTS)) {
    const wanted = `tidemark ${command}`;
    if (scripts[name] === undefined) {
      scripts[name] = wanted;
      steps.push({ action: 'added', path: 'package.json', what: `script "${name}": "${wanted}"` });
    } else if (scripts[name] !== wanted) {
      steps.push({
        action: 'kept',
        path: 'package.json',
        what: `script "${name}": "${scripts[name]}" (tidemark's would be "${wanted}")`,
      });
    }
  }
  if (!steps.some((s) => s.action === 'added')) return { text: packageText, steps };
  const indent = /^[ \t]+(?=")/m.exec(packageText)?.[0] ?? '  ';
  return { text: `${JSON.stringify({ ...pkg, scripts }, null, indent)}\n`, steps };
}

/** .env text with DATABASE_URL appended, or null when it already sets one (whatever its value). */
export function withDatabaseUrl(envText: string, url: string): string | null {
  if (/^\s*(export\s+)?DATABASE_URL\s*=/m.test(envText)) return null;
  const separator = envText === '' || envText.endsWith('\n') ? '' : '\n';
  return (
    `${envText}${separator}# Where tidemark migrates to; the process environment wins over this ` +
    `file.\nDATABASE_URL=${url}\n`
  );
}

/**
 * Forward first (the new code needs the new schema), reload, then back (after a revert, the old code
 * is already running when the versions it lacks are undone): no request meets a schema it cannot use.
 */
export const POST_DEPLOY =
  'npm ci && npm run migrate -- --backup && pm2 startOrReload ecosystem.config.cjs && npm run migrate -- --sync ' +
  '--backup';

/** A pm2 ecosystem file for the app, its deploy block commented out until the hosts are filled in. */
export function ecosystemFile(appName: string, script: string): string {
  return `// pm2 ecosystem file written by \`tidemark init --pm2\`. Start with: pm2 start ecosystem.config.cjs
module.exports = {
  apps: [{ name: ${JSON.stringify(appName)}, script: ${JSON.stringify(script)}, instances: 2, exec_mode: 'cluster' }],
  // Fill in and uncomment to deploy with \`pm2 deploy production\`. The post-deploy hook backs up and migrates,
  // reloads only when that succeeded, then (after a revert) takes back what this release has no files for.
  // deploy: {
  //   production: {
  //     user: 'deploy',
  //     host: ['app1.example.com'],
  //     ref: 'origin/main',
  //     repo: 'git@example.com:you/${appName}.git',
  //     path: '/srv/${appName}',
  //     'post-deploy': '${POST_DEPLOY}',
  //   },
  // },
};
`;
}

/**
 * Applies init's additions to the app in `cwd` (unless dryRun) and returns them; `createFirstPair`
 * writes the first migration pair, called only when the folder `dir` holds no .sql file yet.
 */
export function init(cwd: string, dir: string, options: InitOptions, createFirstPair: () => string[]): InitStep[] {
  const packagePath = join(cwd, 'package.json');
  if (!existsSync(packagePath)) {
    throw new UsageError(`no package.json in ${cwd}: tidemark init adds tidemark to an npm project`, {
      hint: "run it in your app's folder, or create one first with `npm init -y`",
    });
  }
  const packageText = readFileSync(packagePath, 'utf8');
  const scripts = parsedScripts(packageText, packagePath);
  const steps = [...scripts.steps];
  const write = (path: string, text: string) => options.dryRun || writeFileSync(join(cwd, path), text, { flag: 'w' });
  if (scripts.text !== packageText) write('package.json', scripts.text);

  const envText = existsSync(join(cwd, '.env')) ? readFileSync(join(cwd, '.env'), 'utf8') : '';
  const env = withDatabaseUrl(envText, options.url ?? DEFAULT_DATABASE_URL);
  if (env === null) steps.push({ action: 'kept', path: '.env', what: 'DATABASE_URL' });
  else {
    write('.env', env);
    // The URL given may hold a password: it goes into .env, never into the output.
    steps.push({
      action: 'added',
      path: '.env',
      what: options.url ? 'DATABASE_URL (the --url given)' : `DATABASE_URL=${DEFAULT_DATABASE_URL}`,
    });
  }

  if (!hasMigrations(resolve(cwd, dir))) {
    const [forward, rollback] = options.dryRun
      ? [join(dir, '<next>_first_migration.sql'), 'its _rollback.sql']
      : createFirstPair();
    steps.push({ action: 'added', path: forward!, what: 'write your first migration here' });
    steps.push({ action: 'added', path: rollback!, what: 'and here, the SQL that undoes it' });
  }

  if (options.pm2) {
    steps.push(ecosystemStep(cwd, JSON.parse(packageText) as PackageFields, write));
    steps.push(strictStep(cwd, write));
  }
  return steps;
}

function hasMigrations(folder: string): boolean {
  return existsSync(folder) && readdirSync(folder).some((name) => name.endsWith('.sql'));
}

interface PackageFields {
  name?: string;
  main?: string;
}

function parsedScripts(packageText: string, packagePath: string): { text: string; steps: InitStep[] } {
  try {
    return withScripts(packageText);
  } catch (error) {
    throw new UsageError(`${packagePath} is not valid JSON (${(error as Error).message})`, {
      file: packagePath,
      hint: 'fix package.json, then run tidemark init again',
    });
  }
}

/**
 * A pm2 deploy migrates while the old release serves traffic: there, a lock hazard must stop the
 * deploy, not just warn. `"strict": true` goes where the project keeps its tidemark settings.
 */
function strictStep(cwd: string, write: (path: string, text: string) => unknown): InitStep {
  const configFile = existsSync(join(cwd, CONFIG_FILE));
  const path = configFile ? CONFIG_FILE : 'package.json';
  const document = JSON.parse(readFileSync(join(cwd, path), 'utf8')) as Record<string, unknown>;
  const settings = (configFile ? document : (document.tidemark ?? {})) as Record<string, unknown>;
  if (settings.strict !== undefined)
    return { action: 'kept', path, what: `"strict": ${JSON.stringify(settings.strict)}` };
  const updated = configFile ? { ...document, strict: true } : { ...document, tidemark: { ...settings, strict: true } };
  const indent = /^[ \t]+(?=")/m.exec(readFileSync(join(cwd, path), 'utf8'))?.[0] ?? '  ';
  write(path, `${JSON.stringify(updated, null, indent)}\n`);
  return { action: 'added', path, what: '"strict": true: migrate refuses files with lock hazards (tidemark lint)' };
}

function ecosystemStep(cwd: string, pkg: PackageFields, write: (path: string, text: string) => unknown): InitStep {
  const path = 'ecosystem.config.cjs';
  if (existsSync(join(cwd, path)))
    return { action: 'kept', path, what: 'the existing pm2 file: run `npm run migrate` in its post-deploy hook' };
  write(path, ecosystemFile(pkg.name ?? 'app', pkg.main ?? 'index.js'));
  return { action: 'added', path, what: 'a pm2 app in cluster mode and a commented deploy block' };
}
