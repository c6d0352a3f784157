import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HfqProcess } from './support/processes.js';
import { adminRedis, keysUnder, redisUrl, testPrefix } from './support/redis.js';

/**
 * Usage and configuration mistakes, made with the real `hfq`: one line saying what is wrong (then
 * the usage), exit 2, never a stack trace, and nothing written to Redis.
 */

const TOKEN = 'hf_test_usage_0123456789abcdef';
const line = (i: number) =>
  JSON.stringify({
    account: 'acme',
    task: 'feature-extraction',
    model: 'sentence-transformers/all-MiniLM-L6-v2',
    inputs: `u ${i}`,
  });

describe('hfq usage errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hfq-usage-'));
  const prefix = testPrefix('usage');
  const admin = adminRedis();
  const input = join(dir, 'jobs.jsonl');
  const other = join(dir, 'other.jsonl');
  const latin1 = join(dir, 'latin1.jsonl');
  const huge = join(dir, 'huge.jsonl');
  const aclUser = `hfqtest${prefix}`;
  let taken: Server;
  let takenPort = 0;

  beforeAll(async () => {
    writeFileSync(input, `${line(1)}\n${line(2)}\n`);
    writeFileSync(other, `${line(3)}\n`);
    // Line 2 holds "café" in Latin-1: not UTF-8.
    writeFileSync(
      latin1,
      Buffer.concat([
        Buffer.from(`${line(1)}\n{"task":"feature-extraction","model":"m/x","inputs":"caf`),
        Buffer.from([0xe9]),
        Buffer.from('"}\n'),
      ]),
    );
    // A 20 MB line between two good ones.
    writeFileSync(huge, `${line(1)}\n{"inputs":"${'x'.repeat(20 * 1024 * 1024)}"}\n${line(3)}\n`);
    await admin.call('ACL', 'SETUSER', aclUser, 'on', '>right-password', '~*', '+@all');
    taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    takenPort = (taken.address() as { port: number }).port;
  });

  afterAll(async () => {
    taken.close();
    await admin.call('ACL', 'DELUSER', aclUser);
    expect(await keysUnder(admin, prefix)).toEqual([]);
    await admin.quit();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = { REDIS_URL: redisUrl(), HFQ_PREFIX: prefix, HFQ_ACCOUNT: 'acme', HF_TOKEN: TOKEN };
  const url = new URL(redisUrl());
  const cases: { name: string; args: string[]; env?: Record<string, string>; message: RegExp }[] = [
    { name: 'an unknown flag', args: ['enqueue', input, '--bogus'], message: /unknown option --bogus/ },
    { name: 'a missing file argument', args: ['enqueue'], message: /missing <file\.jsonl>/ },
    {
      name: 'a flag without its value',
      args: ['enqueue', input, '--out'],
      message: /option --out needs a value/,
    },
    {
      name: 'a bad --chunk',
      args: ['enqueue', input, '--chunk', 'lots'],
      message: /--chunk takes a whole number/,
    },
    {
      name: 'a flag that does not apply',
      args: ['enqueue', input, '--coalesce', '4'],
      message: /--coalesce applies only with --batch/,
    },
    { name: 'a second file argument', args: ['enqueue', input, other], message: /unexpected argument/ },
    {
      name: '--out in a missing folder',
      args: ['enqueue', input, '--out', join(dir, 'nowhere', 'out.jsonl')],
      message: /folder .*nowhere does not exist/,
    },
    {
      name: 'an input that does not exist',
      args: ['enqueue', join(dir, 'none.jsonl')],
      message: /no such file/,
    },
    { name: 'a non-UTF-8 line', args: ['enqueue', latin1], message: /line 2: not valid UTF-8/ },
    { name: 'a 20 MB line', args: ['enqueue', huge], message: /line 2: longer than 8 MB/ },
    { name: 'status --jsn', args: ['status', '--jsn'], message: /unknown option --jsn/ },
    { name: 'no command', args: [], message: /^hfq — a distributed job queue/ },
    {
      name: 'an unknown --order',
      args: ['enqueue', input, '--order', 'random'],
      message: /--order takes input or completion/,
    },
    {
      name: 'a --deadline that is no time',
      args: ['enqueue', input, '--deadline', 'tomorrow'],
      message:
        /^hfq enqueue: --deadline takes a duration such as 90m, 6h or 1h30m, or an ISO time with a zone .*got "tomorrow"$/,
    },
    {
      name: 'a --deadline in the past',
      args: ['enqueue', input, '--deadline', '2020-01-01T00:00Z'],
      message: /^hfq enqueue: --deadline takes a time in the future, got "2020-01-01T00:00Z"$/,
    },
    {
      name: 'a --deadline of zero',
      args: ['enqueue', input, '--deadline', '0m'],
      message: /^hfq enqueue: --deadline takes a duration longer than zero, got "0m"$/,
    },
    {
      name: 'a --deadline without a zone',
      args: ['enqueue', input, '--deadline', '2030-01-01T12:00'],
      message: /^hfq enqueue: --deadline takes a duration .* got "2030-01-01T12:00"$/,
    },
    {
      name: 'an unknown --prefer',
      args: ['enqueue', input, '--deadline', '6h', '--prefer', 'cheap'],
      message: /^hfq enqueue: --prefer takes cost or speed, got "cheap"$/,
    },
    {
      name: '--prefer without --deadline',
      args: ['enqueue', input, '--prefer', 'speed'],
      message: /^hfq enqueue: --prefer applies only with --deadline$/,
    },
    {
      name: '--deadline-strict without --deadline',
      args: ['enqueue', input, '--deadline-strict'],
      message: /^hfq enqueue: --deadline-strict applies only with --deadline$/,
    },
    { name: 'retry without a target', args: ['retry'], message: /missing <account> or <file\.jsonl>/ },
    {
      name: 'retry of a missing file',
      args: ['retry', join(dir, 'gone.jsonl')],
      message: /gone\.jsonl: no such file/,
    },
    {
      name: 'queue without an action',
      args: ['queue'],
      message: /missing <action> \(pause, resume, clean, drain\)/,
    },
    { name: 'limit without its value', args: ['limit', 'acme'], message: /missing <max>/ },
    {
      name: 'limit for an unknown account',
      args: ['limit', 'acmee', '5'],
      message: /unknown account "acmee"/,
    },
    {
      name: 'limit with a bad value',
      args: ['limit', 'acme', '-3'],
      message: /(<max> takes a whole number|unknown option)/,
    },
    { name: 'credits reset without an account', args: ['credits', 'reset'], message: /missing <account>/ },
    {
      name: 'credits status with --key',
      args: ['credits', 'status', '--key', 'together'],
      message: /--key goes with reset/,
    },
    {
      name: 'credits reset with --key and no value',
      args: ['credits', 'reset', 'acme', '--key'],
      message: /--key needs a value/,
    },
    {
      name: 'an unknown credits subcommand',
      args: ['credits', 'refill'],
      message: /unknown subcommand "refill"/,
    },
    { name: 'worker with an argument', args: ['worker', 'now'], message: /unexpected argument "now"/ },
    {
      name: 'demo with a bad --jobs',
      args: ['demo', '--jobs', 'many'],
      message: /--jobs takes a whole number/,
    },
    {
      name: 'a malformed REDIS_URL',
      args: ['enqueue', input],
      env: { REDIS_URL: 'redis://user:pa ss@host:port:6379' },
      message: /REDIS_URL: not a valid URL/,
    },
    {
      name: 'a wrong Redis password',
      args: ['enqueue', input],
      env: { REDIS_URL: `redis://${aclUser}:wrong-password@${url.host}` },
      message: /REDIS_URL: Redis refused its credentials: WRONGPASS/,
    },
    {
      name: 'a fallback provider without a key',
      args: ['status'],
      env: { HFQ_FALLBACK_PROVIDERS: 'together' },
      message: /fallback provider needs a key/,
    },
    {
      name: 'a provider named twice',
      args: ['status'],
      env: { HFQ_PROVIDER_KEYS: 'together=k1,together=k2' },
      message: /HFQ_PROVIDER_KEYS: "together" is given twice/,
    },
  ];

  const check = async (args: string[], extraEnv: Record<string, string> | undefined, message: RegExp) => {
    const proc = HfqProcess.start(args, { ...env, ...extraEnv });
    const exit = await proc.exited;
    const text = proc.lines.join('\n');
    expect(exit.code, text).toBe(2);
    expect(proc.lines[0], text).toMatch(message);
    expect(text).not.toMatch(/^\s+at /m);
    expect(text).not.toMatch(/pa ss|wrong-password|k1|k2/);
    return proc;
  };

  // A few at a time: each is a Node process.
  for (let i = 0; i < cases.length; i += 6) {
    const group = cases.slice(i, i + 6);
    it(`exits 2 with one line and the usage for ${group.map((c) => c.name).join(', ')}`, {
      timeout: 180_000,
    }, async () => {
      await Promise.all(group.map((c) => check(c.args, c.env, c.message)));
    });
  }

  it('exits 2 naming HFQ_BOARD_PORT when the board port is in use', async () => {
    await check(
      ['board'],
      // A prefix of its own: the board registers its queues before it listens.
      {
        HFQ_PREFIX: testPrefix('usageboard'),
        HFQ_BOARD_PORT: String(takenPort),
        HFQ_BOARD_AUTH: 'off',
        HFQ_BOARD_HOST: '127.0.0.1',
      },
      /port \d+ is already in use \(set HFQ_BOARD_PORT/,
    );
  });

  it('prints the version with --version, and exits 0', async () => {
    const proc = HfqProcess.start(['--version'], env);
    expect((await proc.exited).code).toBe(0);
    expect(proc.lines).toEqual([expect.stringMatching(/^hfq \d+\.\d+\.\d+$/)]);
  });

  it('prints the usage after the message', async () => {
    const proc = await check(['enqueue', input, '--bogus'], undefined, /unknown option --bogus/);
    expect(proc.lines[1]).toMatch(/^Usage: hfq enqueue <file\.jsonl>/);
  });
});
