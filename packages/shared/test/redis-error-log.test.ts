import { RedisErrorLog, routeIoredisConsole } from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';
import { captureLogs, LEVEL } from '../../../test/support/log-capture.js';

/** Redis errors in the log: once per condition and per repeat window, secrets masked; ioredis's console warnings routed to it. */

function refused(port: number): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`connect ECONNREFUSED 127.0.0.1:${port}`);
  err.code = 'ECONNREFUSED';
  return err;
}

describe('RedisErrorLog', () => {
  it('logs a condition once, then once per repeat window with the count in between', () => {
    const logs = captureLogs();
    let now = 1_000_000;
    const log = new RedisErrorLog(logs.logger, { repeatMs: 60_000, now: () => now });
    for (let i = 0; i < 200; i++) {
      log.report(i % 2 ? 'queue acme' : 'worker-state', refused(6390));
      now += 100;
    }
    expect(logs.lines).toHaveLength(1);
    expect(logs.lines[0]).toMatchObject({
      level: LEVEL.warn,
      msg: 'Redis connection error',
      source: 'worker-state',
      err: 'connect ECONNREFUSED 127.0.0.1:6390',
      code: 'ECONNREFUSED',
    });
    now += 60_000;
    log.report('worker-state', refused(6390));
    expect(logs.lines).toHaveLength(2);
    expect(logs.lines[1]).toMatchObject({ repeats: 199 });
    expect(logs.lines[1]?.msg).toMatch(/again; 199 more since the last line/);
  });

  it('keeps distinct conditions apart: another error text, or another message for the same text', () => {
    const logs = captureLogs();
    const log = new RedisErrorLog(logs.logger);
    for (let i = 0; i < 5; i++) {
      log.report('worker-state', refused(6390));
      log.report('worker-state', new Error('Connection is closed.'));
      log.report('worker acme', refused(6390), { level: 'error', msg: 'worker error' });
    }
    expect(logs.lines.map((l) => [l.msg, l.err])).toEqual([
      ['Redis connection error', 'connect ECONNREFUSED 127.0.0.1:6390'],
      ['Redis connection error', 'Connection is closed.'],
      ['worker error', 'connect ECONNREFUSED 127.0.0.1:6390'],
    ]);
    expect(logs.lines[2]?.level).toBe(LEVEL.error);
  });

  it('masks URL passwords, tokens and known secrets, and keeps only the first line', () => {
    const logs = captureLogs();
    const log = new RedisErrorLog(logs.logger, { secrets: () => ['tg-provider-secret'] });
    log.report(
      'worker-state',
      new Error(
        'WRONGPASS for redis://admin:s3cret-pass@10.0.0.5:6379 with hf_abcdefghijklmnop and tg-provider-secret\n  at stack line',
      ),
    );
    const text = logs.text();
    expect(text).not.toContain('s3cret-pass');
    expect(text).not.toContain('hf_abcdefghijklmnop');
    expect(text).not.toContain('tg-provider-secret');
    expect(text).not.toContain('stack line');
    expect(logs.lines[0]?.err).toMatch(/^WRONGPASS for redis:\/\/\*\*\*@10\.0\.0\.5:6379/);
  });
});

describe('routeIoredisConsole', () => {
  it("routes ioredis's console warnings to the log, once per condition, and passes other output through", () => {
    const logs = captureLogs();
    const passed: unknown[][] = [];
    const before = { warn: console.warn, error: console.error };
    console.warn = (...args: unknown[]) => void passed.push(args);
    console.error = (...args: unknown[]) => void passed.push(args);
    const restore = routeIoredisConsole(() => new RedisErrorLog(logs.logger));
    try {
      for (let i = 0; i < 3; i++) {
        console.warn(
          "[WARN] This Redis server's `default` user does not require a password, but a password was supplied",
        );
        console.error(
          '[ioredis] Unhandled error event:',
          'Error: connect ECONNREFUSED 127.0.0.1:6390\n    at TCPConnectWrap.afterConnect',
        );
      }
      console.warn('something else', 42);
    } finally {
      restore();
      console.warn = before.warn;
      console.error = before.error;
    }
    expect(passed).toEqual([['something else', 42]]);
    expect(logs.lines.map((l) => l.err)).toEqual([
      "[WARN] This Redis server's `default` user does not require a password, but a password was supplied",
      '[ioredis] Unhandled error event: Error: connect ECONNREFUSED 127.0.0.1:6390',
    ]);
    expect(logs.lines.every((l) => l.level === LEVEL.warn && l.msg === 'ioredis warning')).toBe(true);
  });
});
