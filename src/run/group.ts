// Commit groups: where the driver allows it (SQLite, whose commit costs fsyncs), consecutive
// transactional steps share one transaction, each in its own savepoint, until the group's time is up.
// Per step nothing changes: a failure keeps every earlier step and nothing of the failing one. The
// steps' events wait for the commit, so nothing is reported done that a crash could still take away;
// a step that outlives the group's time is cut short, the group committed, and the step run again.
import { performance } from 'node:perf_hooks';
import type { CommitGroup, Step } from '../drivers/driver.js';
import type { MigratorEvent } from '../events.js';
import type { Run, Session } from './session.js';
import { runStep, type DirtyRow, type SharedTransaction } from './step.js';

export class CommitGroups {
  /** When the open group began; null when none is open. */
  private openedAt: number | null = null;
  /** The open group's steps, with the events each will report once committed. */
  private done: { step: Step; dirtyRow: DirtyRow; events: MigratorEvent[] }[] = [];
  /** The running step is being cut short (its failure is the cut, not the step's). */
  private cutting = false;

  constructor(
    private readonly session: Session,
    private readonly run: Run,
  ) {}

  /**
   * Runs one step, inside the open group when it can share a transaction; false when another runner
   * did it. `again`: the step was cut short and runs once more, already announced.
   */
  async step(step: Step, dirtyRow: DirtyRow, again = false): Promise<boolean> {
    const group = this.run.driver.commitGroup;
    if (!group || step.script.noTransaction || step.script.foreignKeysOff) {
      await this.commit();
      return runStep(this.session, this.run, step, dirtyRow, { again });
    }
    if (this.openedAt === null) {
      await this.run.driver.begin();
      this.openedAt = performance.now();
    }
    const grouped = { ...step, ownTransaction: false };
    const shared: SharedTransaction = { failure: null, held: [] };
    const timer = this.cutWhenDue(group);
    let ran: boolean;
    try {
      ran = await runStep(this.session, this.run, grouped, dirtyRow, { shared, again });
    } catch (error) {
      const cut = this.stopCutting(timer) && !this.session.interruption;
      await this.keepEarlier(group);
      if (cut) return this.step(step, dirtyRow, true);
      for (const event of shared.held!) this.session.emit(event);
      if (shared.failure) await this.run.driver.recordFailure(shared.failure);
      throw error;
    }
    this.stopCutting(timer);
    if (ran) this.done.push({ step: grouped, dirtyRow, events: shared.held! });
    if (performance.now() - this.openedAt >= group.ms) await this.commit();
    return ran;
  }

  /** With earlier steps waiting, the running one is cut short once the group's time is up. */
  private cutWhenDue(group: CommitGroup): NodeJS.Timeout | undefined {
    if (this.done.length === 0) return undefined;
    const due = this.openedAt! + group.ms - performance.now();
    return setTimeout(() => {
      this.cutting = true;
      group.cut();
    }, due);
  }

  /** Whether the step that just ended was being cut short. */
  private stopCutting(timer: NodeJS.Timeout | undefined): boolean {
    clearTimeout(timer);
    const { cutting } = this;
    this.cutting = false;
    return cutting;
  }

  /**
   * Commits the open group, then reports its steps. A group that cannot commit (a full disk, a reader
   * that outlasts the busy timeout) is rolled back and its steps run again a transaction each, as
   * without groups, so that a failure is the failing step's own, with every step before it kept.
   */
  async commit(): Promise<void> {
    if (this.openedAt === null) return;
    const { done } = this;
    this.openedAt = null;
    this.done = [];
    try {
      await this.run.driver.commit();
    } catch {
      await this.run.driver.rollback().catch(() => {});
      for (const d of done) {
        await runStep(this.session, this.run, { ...d.step, ownTransaction: true }, d.dirtyRow, { again: true });
      }
      return;
    }
    for (const { events } of done) for (const event of events) this.session.emit(event);
  }

  /** After a failed step: undoes it to its savepoint and commits the group's earlier steps. */
  private async keepEarlier(group: CommitGroup): Promise<void> {
    await group.undoStep().catch(() => this.redo());
    await this.commit();
  }

  /**
   * The database rolled the whole group back (SQLite does when an INSERT is interrupted, by a signal
   * or a cut): its finished steps run again in a new transaction, even after a signal, as they were
   * done. Should that fail too, none of them is kept or reported.
   */
  private async redo(): Promise<void> {
    const { driver } = this.run;
    await driver.rollback().catch(() => {});
    const { done } = this;
    this.done = [];
    this.openedAt = null;
    try {
      await driver.begin();
      this.openedAt = performance.now();
      for (const d of done) if ((await driver.runStep(d.step)) !== null) this.done.push(d);
    } catch {
      await driver.rollback().catch(() => {});
      this.done = [];
      this.openedAt = null;
    }
  }
}
