/** Exit codes, as documented in README.md. */
export const ExitCode = {
  ok: 0,
  migrationFailed: 1,
  usage: 2,
  verifyFailed: 3,
  connection: 4,
  /** The connection broke during the run (a server restart, pg_terminate_backend): consistent, run again. */
  connectionLost: 5,
  /** 128 + the signal's number, as a shell reports a process ended by it. */
  sigint: 130,
  sigterm: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorDetails {
  /** Path of the file the error is about, as the user wrote it (relative to the working directory). */
  file?: string;
  line?: number;
  column?: number;
  /** What the user can do about it. */
  hint?: string;
  /** Extra lines shown under the message (the source line with a caret, the server's detail). */
  context?: string[];
  /** The database's own code for the error (PostgreSQL's SQLSTATE), when it gave one. */
  code?: string;
}

/** Every error tidemark reports to a person: a message, an exit code and, where known, file:line and a fix. */
export class TidemarkError extends Error {
  readonly exitCode: ExitCode;
  readonly details: ErrorDetails;

  constructor(message: string, exitCode: ExitCode, details: ErrorDetails = {}) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.details = details;
  }

  /** `file:line:column`, or as much of it as is known. */
  get location(): string | undefined {
    const { file, line, column } = this.details;
    if (!file) return undefined;
    return [file, line, line !== undefined ? column : undefined].filter((part) => part !== undefined).join(':');
  }
}

/** Bad flags, bad configuration or bad migration files: nothing was run. */
export class UsageError extends TidemarkError {
  constructor(message: string, details?: ErrorDetails) {
    super(message, ExitCode.usage, details);
  }
}

/** A migration's SQL failed; its transaction was rolled back. */
export class MigrationError extends TidemarkError {
  constructor(message: string, details?: ErrorDetails) {
    super(message, ExitCode.migrationFailed, details);
  }
}

/** The database could not be reached, or its migration lock not taken, in time. */
export class ConnectionError extends TidemarkError {
  /** The server did not answer (yet): worth retrying with --wait. A refused login is not. */
  readonly unreachable: boolean;

  constructor(message: string, details?: ErrorDetails & { unreachable?: boolean }) {
    const { unreachable = false, ...rest } = details ?? {};
    super(message, ExitCode.connection, rest);
    this.unreachable = unreachable;
  }
}

/**
 * The run was stopped by something outside its migrations (a lost connection, a signal, a lost lock,
 * another runner's ledger row): the running migration's transaction was rolled back, and its history
 * row says `interrupted`, not `failed`, because nothing is wrong with its SQL.
 */
export class InterruptedError extends TidemarkError {}

/** The signals a run stops cleanly on, and their exit codes. */
export const SIGNAL_EXIT_CODES = { SIGINT: ExitCode.sigint, SIGTERM: ExitCode.sigterm } as const;
export type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

export function signalError(signal: StopSignal): InterruptedError {
  const message = `interrupted by ${signal}: the running migration was cancelled and rolled back`;
  return new InterruptedError(message, SIGNAL_EXIT_CODES[signal], {
    hint: 'the migrations reported above as applied are applied; run again for the rest',
  });
}

/** The connection to the database broke after it was made: exit 5. */
export function connectionLostError(description: string, reason: string): InterruptedError {
  const message = `lost the connection to ${description} during the run: ${reason}`;
  return new InterruptedError(message, ExitCode.connectionLost, {
    hint:
      'the server ended the session (a restart, pg_terminate_backend, a proxy or network drop); ' +
      'the running migration ' +
      'was rolled back by the server, so the database is consistent: run again once the server is back',
  });
}

/** The run's lock was taken over while it was paused past its TTL: its running migration was rolled back. */
export function lockTakenOverError(description: string): InterruptedError {
  const message = `lost the migration lock on ${description}: another runner took it over while this run was paused`;
  return new InterruptedError(message, ExitCode.connection, {
    hint:
      'the running migration was rolled back (the other runner applies it); nothing is wrong with its SQL. ' +
      'A run is paused past --lock-ttl by a frozen VM or a stopped process: raise --lock-ttl if that is expected',
  });
}

/** The database is not at the version the application expects (assertSchemaVersion, verify). */
export class SchemaVersionError extends TidemarkError {
  constructor(message: string, details?: ErrorDetails) {
    super(message, ExitCode.verifyFailed, details);
  }
}

/**
 * Node's error for a file or folder (it has a syscall and a path: --dir names a file, a folder cannot
 * be created): bad usage or files, exit 2, not a bug to show a stack trace for. Anything else: null.
 */
export function fileSystemError(error: unknown): UsageError | null {
  const e = error as NodeJS.ErrnoException | null;
  if (!(e instanceof Error) || !e.syscall || !e.path) return null;
  return new UsageError(`cannot ${e.syscall} ${e.path}: ${e.message.replace(/,.*$/, '')}`, {
    hint:
      'check the path (--dir, --log or the database file in DATABASE_URL): its folders must exist as folders ' +
      'and this user must be allowed to use them',
  });
}
