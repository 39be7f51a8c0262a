import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../engine/json.ts';
import { JobStore, type NewJob } from '../../server/queue/store.ts';

const roots: string[] = [];
const file = () => {
  roots.push(mkdtempSync(join(tmpdir(), 'loragraph-store-')));
  return join(roots.at(-1)!, 'data', 'jobs.sqlite');
};
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

const job = (promptId: string, extra: Partial<NewJob> = {}): NewJob => ({
  promptId,
  promptText: `{"9":{"class_type":"SaveImage","inputs":{"seed":18446744073709551615}}}`,
  extraDataText: '{}',
  outputs: ['9'],
  ...extra,
});

const pendingIds = (store: JobStore) => (parseJson(store.queueText()) as { queue_pending: [number, string][] }).queue_pending.map((item) => item[1]);

describe('JobStore (SQLite queue and history)', () => {
  it('orders pending jobs by number, puts `front` jobs first, and moves jobs to the front', () => {
    const store = new JobStore(file());
    expect(store.add(job('a'))).toBe(1);
    expect(store.add(job('b'))).toBe(2);
    expect(store.add(job('c', { front: true }))).toBe(-3);
    store.add(job('d', { number: 1.5 }));
    expect(pendingIds(store)).toEqual(['c', 'a', 'd', 'b']);
    store.moveToFront(['b', 'd']);
    expect(pendingIds(store)).toEqual(['b', 'd', 'c', 'a']);
    expect(store.next()?.promptId).toBe('b');
    store.delete(['d', 'unknown']);
    expect(pendingIds(store)).toEqual(['b', 'c', 'a']);
    store.clear();
    expect(store.remaining()).toBe(0);
    store.close();
  });

  it('keeps prompts as the exact text that arrived (64-bit seeds) in queue items', () => {
    const store = new JobStore(file());
    store.add(job('a'));
    expect(store.queueText()).toContain('"seed":18446744073709551615');
    const item = (parseJson(store.queueText()) as { queue_pending: [number, string, Record<string, { inputs: { seed: bigint } }>, object, string[]][] }).queue_pending[0];
    expect(item[2]['9'].inputs.seed).toBe(2n ** 64n - 1n);
    expect(item[4]).toEqual(['9']);
    store.close();
  });

  it('survives reopening: pending jobs stay, running ones are queued again (up to the attempt limit), history is kept', () => {
    const path = file();
    let store = new JobStore(path);
    store.add(job('done'));
    store.add(job('crashed'));
    store.add(job('waiting'));
    store.start('done');
    store.finish('done', { outcome: 'success', outputs: { '9': { images: [] } }, messages: [['execution_success', { prompt_id: 'done' }]] });
    store.start('crashed');
    store.close(); // as if killed while 'crashed' ran

    store = new JobStore(path);
    expect(store.recover(3)).toEqual({ requeued: ['crashed'], failed: [] });
    expect(pendingIds(store)).toEqual(['crashed', 'waiting']);
    const history = parseJson(store.historyText()) as Record<string, { status: { status_str: string; completed: boolean } }>;
    expect(Object.keys(history)).toEqual(['done']);
    expect(history.done.status).toMatchObject({ status_str: 'success', completed: true });

    // A job that keeps taking the server down is given up after the third start.
    store.start('crashed');
    store.close();
    store = new JobStore(path);
    store.recover(3);
    store.start('crashed');
    store.close();
    store = new JobStore(path);
    expect(store.recover(3)).toEqual({ requeued: [], failed: ['crashed'] });
    const failed = parseJson(store.historyText({ promptId: 'crashed' })) as Record<string, { status: { status_str: string; messages: [string, { exception_type: string }][] } }>;
    expect(failed.crashed.status.status_str).toBe('error');
    expect(failed.crashed.status.messages[0][1].exception_type).toBe('server_stopped');
    store.close();
  });

  it('pages the history like ComfyUI (max_items alone = newest), deletes and clears it, and caps its size', () => {
    const store = new JobStore(file(), 3);
    for (const id of ['h1', 'h2', 'h3', 'h4']) {
      store.add(job(id));
      store.start(id);
      store.finish(id, { outcome: id === 'h4' ? 'interrupted' : 'success', outputs: {}, messages: [] });
    }
    const keys = (text: string) => Object.keys(parseJson(text) as object);
    expect(keys(store.historyText())).toEqual(['h2', 'h3', 'h4']); // h1 dropped by the cap
    expect(keys(store.historyText({ maxItems: 2 }))).toEqual(['h3', 'h4']);
    expect(keys(store.historyText({ maxItems: 1, offset: 0 }))).toEqual(['h2']);
    const h4 = parseJson(store.historyText({ promptId: 'h4' })) as Record<string, { status: { status_str: string; outcome: string; completed: boolean } }>;
    expect(h4.h4.status).toMatchObject({ status_str: 'error', outcome: 'interrupted', completed: false });
    store.deleteHistory(['h3']);
    expect(keys(store.historyText())).toEqual(['h2', 'h4']);
    store.clearHistory();
    expect(store.historyText()).toBe('{}');
    store.close();
  });

  it('a job released on shutdown runs again without counting the attempt', () => {
    const store = new JobStore(file());
    store.add(job('a'));
    store.start('a');
    store.release('a');
    expect(store.next()).toMatchObject({ promptId: 'a', attempts: 0 });
    store.close();
  });
});
