// The public API's types as an application sees them: compiled (tsc --noEmit, strict) by
// test/examples.test.mjs. A line marked @ts-expect-error fails the compile if it stops being an error.
import {
  assertSchemaVersion,
  createMigrator,
  MigrationError,
  TidemarkError,
  type MigratorEvent,
  type StatusEntry,
  type VerifyReport,
} from 'tidemark';

const migrator = createMigrator({ url: 'sqlite:data/app.db', dir: 'sql', log: false });

migrator.events.on('applied', (e) => {
  const text: string = e.versionText;
  const ms: number = e.ms;
  // @ts-expect-error: 'applied' carries no error text
  void e.error;
  void [text, ms];
});
migrator.events.on('reverted', (e) => void (e.name satisfies string));
migrator.events.on('failed', (e) => void (e.error satisfies string));
migrator.events.on('event', (e: MigratorEvent) => {
  if (e.type === 'summary') void (e.version satisfies bigint);
});
// @ts-expect-error: no such event
migrator.events.on('applies', () => {});

export async function deploy(): Promise<bigint | number> {
  const { applied, version } = await migrator.migrate({ target: 3, dryRun: true });
  await migrator.migrate({ target: 9223372036854775807n });
  await migrator.migrate({ target: '20240101120000000001' });
  void (applied satisfies number);
  await migrator.rollback({ to: 2 });
  const { entries } = await migrator.status();
  const first: StatusEntry | undefined = entries[0];
  void first?.state;
  const report: VerifyReport = await migrator.verify();
  void report;
  try {
    return (await assertSchemaVersion({ expected: version })) satisfies bigint;
  } catch (error) {
    if (error instanceof MigrationError) void (error.details.file satisfies string | undefined);
    if (error instanceof TidemarkError) return error.exitCode;
    throw error;
  }
}
