// What a command loads: `--version` nothing but the entry point, a no-op `migrate` (every deploy pays
// it) only the migrate path and its own dialect's client. Loaded modules are seen through a module
// loader hook (ES modules) and require's cache (CommonJS), as the user's process loads them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BASE, DIALECTS, dispose, makeProject, project, removeProject, ROOT, runCli } from './helpers.mjs';

const probeDir = mkdtempSync(join(tmpdir(), 'tidemark-startup-'));
const hooks = join(probeDir, 'hooks.mjs');
const register = join(probeDir, 'register.mjs');
writeFileSync(
  hooks,
  "import { appendFileSync } from 'node:fs';\n" +
    'export async function load(url, context, next) {\n  appendFileSync(process.env.PROBE_FILE, `${url}\\n`);\n  return next(url, context);\n}\n',
);
writeFileSync(
  register,
  `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n` +
    // CommonJS modules required by CommonJS code do not pass the hook: require's cache names them at exit.
    "import { createRequire } from 'node:module';\nimport { appendFileSync } from 'node:fs';\n" +
    'const cache = createRequire(import.meta.url).cache;\n' +
    "process.on('exit', () => appendFileSync(process.env.PROBE_FILE, Object.keys(cache).map((p) => `${p}\\n`).join('')));\n",
);

const DIST = join(ROOT, 'dist');

/** Runs the CLI and returns what it loaded: tidemark's modules as paths under dist/, packages by name. */
function loadedBy(args, { cwd, env = {} }) {
  const file = join(probeDir, `loaded-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, '');
  const result = runCli(args, {
    cwd,
    env: { ...env, PROBE_FILE: file, NODE_OPTIONS: `--import ${pathToFileURL(register).href}` },
  });
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  rmSync(file);
  const paths = lines.map((l) => (l.startsWith('file:') ? decodeURIComponent(new URL(l).pathname) : l));
  const own = [...new Set(paths.filter((p) => p.startsWith(DIST)).map((p) => p.slice(DIST.length + 1)))];
  const packages = [...new Set(paths.flatMap((p) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p)?.[1] ?? []))];
  return { result, own, packages };
}

/** tidemark's modules that only other commands need. */
const OTHER_COMMANDS =
  /^(verify|schema|sqlscript|init|backup|findings|lint\w*)\.js$|^import\/(?!formats\.js)|^fleet\/|^drivers\/(\w+-schema|\w+-backup|scratch|fleet-query)\.js$/;
/** tidemark's modules that only a run with something pending needs. */
const NOT_FOR_A_NO_OP = /^sql\/(?!text\.js)|^script\.js$|^migrate\/pending\.js$/;
const OTHER_DIALECT = {
  sqlite: { module: /^drivers\/postgres/, client: 'postgres' },
  postgres: { module: /^drivers\/sqlite/, client: 'sqlite3' },
};

const startup = suite('start-up loads only what the command needs');

startup('--version loads nothing but the entry point', () => {
  const cwd = makeProject(BASE);
  try {
    const { result, own, packages } = loadedBy(['--version'], { cwd });
    assert.is(result.code, 0, result.output);
    assert.match(result.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.equal(own, ['cli.js']);
    assert.equal(packages, []);
  } finally {
    removeProject(cwd);
  }
});

for (const dialect of DIALECTS) {
  startup(
    `a no-op migrate on ${dialect} loads no other command's code, no other dialect, no lexer or parser`,
    async () => {
      const p = await project(dialect, BASE);
      try {
        const env = { DATABASE_URL: p.db.url };
        const first = runCli(['migrate'], { cwd: p.cwd, env });
        assert.is(first.code, 0, first.output);
        const { result, own, packages } = loadedBy(['migrate'], { cwd: p.cwd, env });
        assert.is(result.code, 0, result.output);
        assert.match(result.stdout, 'up to date');
        assert.ok(own.includes('migrator.js'), `the probe saw the run: ${own.join(' ')}`);
        assert.equal(
          own.filter((m) => OTHER_COMMANDS.test(m)),
          [],
          'modules of other commands',
        );
        assert.equal(
          own.filter((m) => OTHER_DIALECT[dialect].module.test(m)),
          [],
          'the other dialect',
        );
        assert.not.ok(packages.includes(OTHER_DIALECT[dialect].client), `loaded ${OTHER_DIALECT[dialect].client}`);
        assert.not.ok(packages.includes('libpg-query'), 'loaded the PostgreSQL parser');
        // Applied files are hashed, never lexed: the lexers and planning load only when something is pending.
        assert.equal(
          own.filter((m) => NOT_FOR_A_NO_OP.test(m)),
          [],
          'the lexers or the planning of pending migrations',
        );
        // `npm run migrate` on every deploy: a bare migrate has no options to parse.
        assert.not.ok(packages.includes('yargs'), 'loaded the command line parser');
      } finally {
        await dispose(p);
      }
    },
  );
}

startup.after(() => rmSync(probeDir, { recursive: true, force: true }));
startup.run();
