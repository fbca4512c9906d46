// Which SQLite the sqlite3 package runs: the lint checks ALTER TABLE forms against it. Loaded only
// when SQLite files are linted; a PostgreSQL-only app has no sqlite3 package.

/** The SQLite library version (`3.45.0`), or null when the sqlite3 package is not installed. */
export async function installedSqliteVersion(): Promise<string | null> {
  try {
    return (await import('sqlite3')).default.VERSION;
  } catch {
    return null;
  }
}
