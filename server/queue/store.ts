/**
 * The job queue and its history in one SQLite table (WAL, synchronous=FULL): a job is on disk before
 * POST /prompt answers, so it survives a crash or `kill -9`. A job is `pending`, `running` or `done`; the
 * pending ones run lowest `number` first (ComfyUI's priority), then in arrival order. Prompts and extra data are
 * kept as the lossless JSON text that arrived, and responses are assembled from that text, so 64-bit seeds
 * round-trip exactly and listing the queue never re-parses prompts.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringifyJson, type Json } from '../../engine/json.ts';

export interface NewJob {
  readonly promptId: string;
  /** Explicit priority; otherwise the arrival counter (negated with `front`). */
  readonly number?: number;
  readonly front?: boolean;
  readonly promptText: string;
  readonly extraDataText: string;
  readonly clientId?: string;
  readonly outputs: readonly string[];
}

export interface StoredJob {
  readonly promptId: string;
  readonly number: number;
  readonly promptText: string;
  readonly extraDataText: string;
  readonly clientId: string | null;
  readonly outputs: string[];
  readonly attempts: number;
}

export type Outcome = 'success' | 'error' | 'interrupted';

export interface JobResult {
  readonly outcome: Outcome;
  /** The node UI outputs, `{ "<id>": { images: [...] } }`. */
  readonly outputs: Record<string, Json>;
  /** ComfyUI's status messages: `[["execution_start", {...}], …]`. */
  readonly messages: [string, Json][];
}

interface Row {
  prompt_id: string;
  number: number;
  prompt: string;
  extra_data: string;
  client_id: string | null;
  outputs_to_execute: string;
  attempts: number;
}

interface HistoryRow extends Row {
  queued_at: number;
  started_at: number | null;
  finished_at: number;
  outcome: Outcome;
  outputs: string;
  messages: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  prompt_id TEXT NOT NULL UNIQUE,
  number REAL NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done')),
  prompt TEXT NOT NULL,
  extra_data TEXT NOT NULL,
  client_id TEXT,
  outputs_to_execute TEXT NOT NULL,
  queued_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  outcome TEXT,
  outputs TEXT,
  messages TEXT,
  history_seq INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (state, number, seq);
CREATE INDEX IF NOT EXISTS jobs_history ON jobs (history_seq) WHERE history_seq IS NOT NULL;
`;

const toJob = (r: Row): StoredJob => ({
  promptId: r.prompt_id,
  number: r.number,
  promptText: r.prompt,
  extraDataText: r.extra_data,
  clientId: r.client_id,
  outputs: JSON.parse(r.outputs_to_execute) as string[],
  attempts: r.attempts,
});

/** `[number, prompt_id, prompt, extra_data, outputs_to_execute]`, ComfyUI's queue item, as JSON text. */
function queueItemText(r: Row): string {
  return `[${r.number},${JSON.stringify(r.prompt_id)},${r.prompt},${r.extra_data},${r.outputs_to_execute}]`;
}

export class JobStore {
  private readonly db: Database.Database;

  constructor(
    file: string,
    private readonly maxHistory = 10_000,
  ) {
    mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // FULL: a job acknowledged to the client is on disk even if the machine loses power right after.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  has(promptId: string): boolean {
    return this.db.prepare('SELECT 1 FROM jobs WHERE prompt_id = ?').get(promptId) !== undefined;
  }

  /** Queues a job and returns its priority number. */
  add(job: NewJob, now = Date.now()): number {
    return this.db.transaction(() => {
      const { lastInsertRowid } = this.db
        .prepare(`INSERT INTO jobs (prompt_id, number, state, prompt, extra_data, client_id, outputs_to_execute, queued_at) VALUES (?, 0, 'pending', ?, ?, ?, ?, ?)`)
        .run(job.promptId, job.promptText, job.extraDataText, job.clientId ?? null, JSON.stringify(job.outputs), now);
      const seq = Number(lastInsertRowid);
      const number = job.number ?? (job.front ? -seq : seq);
      this.db.prepare('UPDATE jobs SET number = ? WHERE seq = ?').run(number, seq);
      return number;
    })();
  }

  /** Pending plus running jobs (ComfyUI's queue_remaining). */
  remaining(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE state IN ('pending', 'running')`).get() as { n: number }).n;
  }

  /** The job to run next, without taking it. */
  next(): StoredJob | undefined {
    const row = this.db.prepare(`SELECT * FROM jobs WHERE state = 'pending' ORDER BY number, seq LIMIT 1`).get() as Row | undefined;
    return row && toJob(row);
  }

  /** Marks a pending job running; false when it was deleted meanwhile. */
  start(promptId: string, now = Date.now()): boolean {
    return this.db.prepare(`UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1 WHERE prompt_id = ? AND state = 'pending'`).run(now, promptId).changes === 1;
  }

  /** Moves a finished job into the history, dropping the oldest entries beyond the cap. */
  finish(promptId: string, result: JobResult, now = Date.now()): void {
    this.db.transaction(() => {
      const { h } = this.db.prepare('SELECT COALESCE(MAX(history_seq), 0) + 1 AS h FROM jobs').get() as { h: number };
      this.db
        .prepare(`UPDATE jobs SET state = 'done', finished_at = ?, outcome = ?, outputs = ?, messages = ?, history_seq = ? WHERE prompt_id = ?`)
        .run(now, result.outcome, stringifyJson(result.outputs), stringifyJson(result.messages), h, promptId);
      this.db.prepare(`DELETE FROM jobs WHERE state = 'done' AND history_seq <= ?`).run(h - this.maxHistory);
    })();
  }

  /** A job taken back without running to the end (graceful shutdown): pending again, attempt not counted. */
  release(promptId: string): void {
    this.db.prepare(`UPDATE jobs SET state = 'pending', started_at = NULL, attempts = MAX(attempts - 1, 0) WHERE prompt_id = ? AND state = 'running'`).run(promptId);
  }

  /**
   * After a crash: jobs that were running are queued again at their old place, unless they have already
   * been started `maxAttempts` times (a job that kills the server must not do so forever); those are
   * recorded as failed. Returns the ids of both kinds.
   */
  recover(maxAttempts: number, now = Date.now()): { requeued: string[]; failed: string[] } {
    const rows = this.db.prepare(`SELECT * FROM jobs WHERE state = 'running'`).all() as Row[];
    const requeued: string[] = [];
    const failed: string[] = [];
    for (const row of rows) {
      if (row.attempts < maxAttempts) {
        this.db.prepare(`UPDATE jobs SET state = 'pending', started_at = NULL WHERE prompt_id = ?`).run(row.prompt_id);
        requeued.push(row.prompt_id);
        continue;
      }
      const message = `the server stopped ${row.attempts} times while running this job; it is not retried again`;
      this.finish(row.prompt_id, {
        outcome: 'error',
        outputs: {},
        messages: [['execution_error', { prompt_id: row.prompt_id, node_id: null, node_type: null, executed: [], exception_message: message, exception_type: 'server_stopped', traceback: [], current_inputs: {}, current_outputs: [], timestamp: now }]],
      }, now);
      failed.push(row.prompt_id);
    }
    return { requeued, failed };
  }

  /** Removes pending jobs by id (a running job is interrupted, not deleted). */
  delete(promptIds: readonly string[]): number {
    const del = this.db.prepare(`DELETE FROM jobs WHERE prompt_id = ? AND state = 'pending'`);
    return this.db.transaction(() => promptIds.reduce((n, id) => n + del.run(id).changes, 0))();
  }

  clear(): number {
    return this.db.prepare(`DELETE FROM jobs WHERE state = 'pending'`).run().changes;
  }

  /** Puts pending jobs ahead of every other pending job, keeping their relative order. */
  moveToFront(promptIds: readonly string[]): number {
    return this.db.transaction(() => {
      const { m } = this.db.prepare(`SELECT COALESCE(MIN(number), 0) AS m FROM jobs WHERE state = 'pending'`).get() as { m: number };
      const move = this.db.prepare(`UPDATE jobs SET number = ? WHERE prompt_id = ? AND state = 'pending'`);
      let moved = 0;
      promptIds.forEach((id, i) => (moved += move.run(Math.floor(m) - promptIds.length + i, id).changes));
      return moved;
    })();
  }

  /** `{queue_running, queue_pending}` as JSON text. */
  queueText(): string {
    const running = this.db.prepare(`SELECT * FROM jobs WHERE state = 'running' ORDER BY started_at`).all() as Row[];
    const pending = this.db.prepare(`SELECT * FROM jobs WHERE state = 'pending' ORDER BY number, seq`).all() as Row[];
    return `{"queue_running":[${running.map(queueItemText).join(',')}],"queue_pending":[${pending.map(queueItemText).join(',')}]}`;
  }

  /**
   * History as JSON text `{ "<id>": item, … }` in completion order: `offset`/`maxItems` page through it; with
   * only `maxItems`, the newest ones.
   */
  historyText(options: { maxItems?: number; offset?: number; promptId?: string } = {}): string {
    let rows: HistoryRow[];
    if (options.promptId !== undefined) {
      rows = this.db.prepare(`SELECT * FROM jobs WHERE state = 'done' AND prompt_id = ?`).all(options.promptId) as HistoryRow[];
    } else {
      const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE state = 'done'`).get() as { n: number }).n;
      const limit = options.maxItems ?? -1;
      const offset = options.offset ?? (options.maxItems !== undefined ? Math.max(0, total - options.maxItems) : 0);
      rows = this.db.prepare(`SELECT * FROM jobs WHERE state = 'done' ORDER BY history_seq LIMIT ? OFFSET ?`).all(limit, offset) as HistoryRow[];
    }
    return `{${rows.map((r) => `${JSON.stringify(r.prompt_id)}:${historyItemText(r)}`).join(',')}}`;
  }

  deleteHistory(promptIds: readonly string[]): number {
    const del = this.db.prepare(`DELETE FROM jobs WHERE prompt_id = ? AND state = 'done'`);
    return this.db.transaction(() => promptIds.reduce((n, id) => n + del.run(id).changes, 0))();
  }

  clearHistory(): number {
    return this.db.prepare(`DELETE FROM jobs WHERE state = 'done'`).run().changes;
  }
}

/** ComfyUI's history item, plus `timing` (ms since the epoch) and the outcome that tells interrupts apart. */
function historyItemText(r: HistoryRow): string {
  const outputs = JSON.parse(r.outputs) as Record<string, unknown>;
  const meta = Object.fromEntries(Object.keys(outputs).map((id) => [id, { node_id: id, display_node: id, parent_node: null, real_node_id: id }]));
  const status = `{"status_str":${JSON.stringify(r.outcome === 'success' ? 'success' : 'error')},"completed":${r.outcome === 'success'},"outcome":${JSON.stringify(r.outcome)},"messages":${r.messages}}`;
  const timing = JSON.stringify({ queued_at: r.queued_at, started_at: r.started_at, finished_at: r.finished_at, attempts: r.attempts });
  return `{"prompt":${queueItemText(r)},"outputs":${r.outputs},"status":${status},"meta":${JSON.stringify(meta)},"timing":${timing}}`;
}
