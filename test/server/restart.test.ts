/**
 * Crash safety with the real server as a child process: jobs queued before a `kill -9` (one of them running)
 * all complete after a restart on the same data folder, each exactly once; a clean stop (SIGTERM) puts the
 * running job back without counting it as an attempt.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { AppConfig } from '../../server/config.ts';
import { postJson, removeTempConfig, request, spawnServer, tempConfig, txt2img, WsRecorder } from './helpers.ts';

const children: ChildProcess[] = [];
let config: AppConfig | undefined;

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  removeTempConfig(config);
});

async function start(at: AppConfig) {
  const s = await spawnServer(at);
  children.push(s.child);
  const ws = await WsRecorder.open(`${s.url.replace('http', 'ws')}/ws?clientId=restart`);
  return { ...s, ws };
}

const exited = (child: ChildProcess) => new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

type History = Record<string, { status: { status_str: string }; timing: { attempts: number }; outputs: Record<string, { images: { filename: string }[] }> }>;

async function waitForHistory(url: string, ids: string[], timeoutMs = 90_000): Promise<History> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const history = (await request(url, '/api/history')).json as History;
    if (ids.every((id) => history[id])) return history;
    if (Date.now() > until) throw new Error(`jobs not finished: ${ids.filter((id) => !history[id]).join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('restart safety', () => {
  it('loses nothing and duplicates nothing across kill -9, and requeues the running job on a clean stop', async () => {
    config = tempConfig('loragraph-restart-');
    const first = await start(config);
    const queue = async (url: string, prefix: string, steps: number) => {
      const res = await postJson(url, '/prompt', { prompt: txt2img({ 3: { steps, seed: prefix.length }, 9: { filename_prefix: prefix } }), client_id: 'restart' });
      expect(res.status, res.text).toBe(200);
      return (res.json as { prompt_id: string }).prompt_id;
    };
    const running = await queue(first.url, 'running', 150);
    const waiting = [await queue(first.url, 'second', 4), await queue(first.url, 'third', 4), await queue(first.url, 'fourth', 4)];
    await first.ws.waitFor((m) => m.type === 'progress' && m.data.prompt_id === running && (m.data.value as number) >= 3);
    const gone = exited(first.child);
    first.child.kill('SIGKILL');
    expect((await gone).signal).toBe('SIGKILL');

    const second = await start(config);
    const all = [running, ...waiting];
    const history = await waitForHistory(second.url, all);
    expect(Object.keys(history).sort()).toEqual([...all].sort());
    for (const id of all) expect(history[id].status.status_str).toBe('success');
    expect(history[running].timing.attempts).toBe(2);
    expect(waiting.map((id) => history[id].timing.attempts)).toEqual([1, 1, 1]);
    // Each job wrote its image once: the killed run had not reached SaveImage.
    const files = readdirSync(config.outputDir).sort();
    expect(files).toEqual(['fourth_00001_.png', 'running_00001_.png', 'second_00001_.png', 'third_00001_.png']);
    expect(((await request(second.url, '/queue')).json as { queue_pending: unknown[] }).queue_pending).toEqual([]);

    // A clean stop while a job runs: it is put back and runs after the next start, its attempt not counted.
    const again = await queue(second.url, 'graceful', 150);
    await second.ws.waitFor((m) => m.type === 'progress' && m.data.prompt_id === again && (m.data.value as number) >= 2);
    const stopped = exited(second.child);
    second.child.kill('SIGTERM');
    expect((await stopped).code).toBe(0);
    const third = await start(config);
    const after = await waitForHistory(third.url, [again]);
    expect(after[again]).toMatchObject({ status: { status_str: 'success' }, timing: { attempts: 1 } });
    expect(Object.keys(after)).toHaveLength(5);
    third.ws.close();
    const end = exited(third.child);
    third.child.kill('SIGTERM');
    expect((await end).code).toBe(0);
  });
});
