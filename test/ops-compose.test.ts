import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JOB, KNOWN_VARIABLES } from '@hfq/shared';
import { parseOrThrow } from '@hfq/shared/internal';
import { parseSimEnv } from '@hfq/sim';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HfqProcess, ROOT } from './support/processes.js';

/**
 * There is no Docker engine where the tests run: these read docker-compose.yml and the
 * Dockerfile and hold them to the CLI and the config they drive.
 */

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number | boolean>;
  profiles?: string[];
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string; required?: boolean }>;
  configs?: { source: string; target: string }[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  configs?: Record<string, { content: string }>;
}

function readCompose(file: string): Compose {
  return parse(readFileSync(join(ROOT, file), 'utf8'), { merge: true }) as Compose;
}

/** `docker compose -f a -f b`: services merge by name, their maps (environment, depends_on) by key. */
function merged(base: Compose, extra: Compose): Compose {
  const services: Record<string, Service> = { ...base.services };
  for (const [name, service] of Object.entries(extra.services)) {
    const before = services[name] ?? {};
    services[name] = {
      ...before,
      ...service,
      environment: { ...before.environment, ...service.environment },
      depends_on: { ...before.depends_on, ...service.depends_on },
    };
  }
  return { ...base, services, configs: { ...base.configs, ...extra.configs } };
}

/** Production: the default file alone. */
const production = readCompose('docker-compose.yml');
/** The demo: the default file plus docker-compose.demo.yml (the simulator). */
const compose = merged(production, readCompose('docker-compose.demo.yml'));
const redisPort = readCompose('docker-compose.redis-port.yml');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const SIM_VARIABLES = ['SIM_HOST', 'SIM_PORT', 'SIM_CONFIG'];
const known = new Set<string>(KNOWN_VARIABLES);

/** Services that run the hfq image, with their CLI command. */
const hfqServices = Object.entries(compose.services).filter(([, s]) => s.image?.includes('hfq'));

function seconds(duration: string | undefined): number {
  const match = /^(\d+)(ms|s|m)$/.exec(duration ?? '');
  if (!match) return 0;
  const n = Number(match[1]);
  return match[2] === 'ms' ? n / 1000 : match[2] === 'm' ? n * 60 : n;
}

/** `${NAME:-default}` → default; `${NAME-default}` → default; `${NAME:?…}` → undefined; a plain value → itself. */
function defaultOf(value: string | number | boolean | undefined): string | undefined {
  const text = String(value ?? '');
  const match = /^\$\{[A-Z_0-9]+(:?-)([^}]*)\}$/.exec(text);
  if (match) return match[2];
  return text.startsWith('${') ? undefined : text;
}

describe('docker-compose.yml', () => {
  it('runs Redis with AOF, noeviction, a volume and a healthcheck', () => {
    const redis = compose.services.redis;
    expect(redis?.image).toMatch(/^redis:7/);
    const command = redis?.command?.join(' ') ?? '';
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(redis?.volumes).toContain('redis-data:/data');
    expect(compose.volumes).toHaveProperty('redis-data');
    expect(redis?.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('runs two workers that wait for a healthy Redis and get time for a graceful stop', () => {
    const worker = compose.services.worker;
    expect(worker?.command).toEqual(['worker']);
    expect(worker?.deploy?.replicas).toBe(2);
    expect(worker?.depends_on?.redis?.condition).toBe('service_healthy');
    const graceMs = Number(defaultOf(worker?.environment?.HFQ_SHUTDOWN_GRACE_MS));
    expect(graceMs).toBeGreaterThan(0);
    // Docker's SIGKILL must come after the grace and the hand-back.
    expect(seconds(worker?.stop_grace_period) * 1000).toBeGreaterThan(graceMs + 10_000);
  });

  it('publishes the board on loopback with credentials from the environment', () => {
    const board = compose.services.board;
    expect(board?.command).toEqual(['board']);
    expect(board?.ports?.[0]).toMatch(/^127\.0\.0\.1:\$\{HFQ_BOARD_PUBLISH_PORT:-3000\}:3000$/);
    expect(String(board?.environment?.HFQ_BOARD_USER)).toMatch(/^\$\{HFQ_BOARD_USER/);
    // No default password: compose refuses to start without one.
    expect(String(board?.environment?.HFQ_BOARD_PASSWORD)).toMatch(/^\$\{HFQ_BOARD_PASSWORD:\?/);
    expect(board?.healthcheck?.test.join(' ')).toContain('/healthz');
  });

  it('without the demo file, names no simulator: every upstream URL is the real one', () => {
    expect(Object.keys(production.services).sort()).toEqual(['board', 'redis', 'worker']);
    for (const [name, service] of Object.entries(production.services)) {
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        expect(String(value), `${name}: ${variable}`).not.toMatch(/sim:8080|\bsim\b/);
        if (/_URLS?$/.test(variable) && variable !== 'REDIS_URL')
          expect(defaultOf(value), `${name}: ${variable} defaults to the real upstream`).toBe('');
      }
      expect(Object.keys(service.depends_on ?? {}), name).not.toContain('sim');
    }
    // No demo token either: a production worker without HF_TOKEN stops naming the variable.
    expect(defaultOf(production.services.worker?.environment?.HF_TOKEN)).toBe('');
  });

  it('publishes Redis on the host only when asked (docker-compose.redis-port.yml), and then on loopback', () => {
    expect(production.services.redis?.ports).toBeUndefined();
    expect(compose.services.redis?.ports).toBeUndefined();
    expect(redisPort.services.redis?.ports?.[0]).toMatch(
      /^127\.0\.0\.1:\$\{HFQ_REDIS_PUBLISH_PORT:-6379\}:6379$/,
    );
  });

  it('the demo file adds the simulator and the demo jobs, and points the workers at it', () => {
    expect(compose.services.sim?.command).toEqual(['sim']);
    expect(compose.services['demo-jobs']?.command?.[0]).toBe('enqueue');
    expect(compose.services.worker?.depends_on?.sim).toEqual({ condition: 'service_healthy' });
    const env = compose.services.worker?.environment ?? {};
    expect(defaultOf(env.HF_ROUTER_URL)).toBe('http://sim:8080/router');
    expect(defaultOf(env.HF_HUB_URL)).toBe('http://sim:8080/hub');
    expect(defaultOf(env.HFQ_ACCOUNT)).toBe('demo');
    const sim = parseSimEnv(
      Object.fromEntries(
        Object.entries(compose.services.sim?.environment ?? {}).map(([k, v]) => [k, String(v)]),
      ),
    );
    expect(sim).toMatchObject({ host: '0.0.0.0', port: 8080 });
  });

  it('sets only environment variables the config knows', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const variable of Object.keys(service.environment ?? {})) {
        const ok = name === 'sim' ? SIM_VARIABLES.includes(variable) : known.has(variable);
        expect(ok, `${name} sets ${variable}, which the config does not read`).toBe(true);
      }
    }
  });

  it('ships demo jobs that pass the job schema', () => {
    const lines = (compose.configs?.['demo-jobs']?.content ?? '').split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => parseOrThrow(JOB, JSON.parse(line), 'demo job')).not.toThrow();
  });

  it('gives every hfq service a command the CLI has', async () => {
    expect(hfqServices.map(([name]) => name).sort()).toEqual(['board', 'demo-jobs', 'sim', 'worker']);
    const commands = [...new Set(hfqServices.map(([, s]) => s.command?.[0] ?? ''))];
    const results = await Promise.all(
      commands.map(async (command) => {
        const proc = HfqProcess.start([command, '--help'], {});
        const exit = await proc.exited;
        return { command, code: exit.code, output: proc.lines.join('\n') };
      }),
    );
    for (const r of results) {
      expect(r.code, `hfq ${r.command} --help`).toBe(0);
      expect(r.output, `hfq ${r.command} --help`).not.toContain('unknown command');
      // Its own help (`hfq enqueue …` or `Usage: hfq enqueue …`), not the global one.
      expect(r.output, `hfq ${r.command} --help prints its own help`).toMatch(
        new RegExp(`^(Usage: )?hfq ${r.command}\\b`),
      );
    }
  });
});

describe('Dockerfile', () => {
  it('builds in stages on Node 22 with the lockfile and runs as a non-root user', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:22-/m);
    expect((dockerfile.match(/^FROM /gm) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toContain('pnpm install --frozen-lockfile');
    expect(dockerfile).toContain('pnpm -r build');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/dist\/main\.js"\]$/m);
  });

  it('copies the manifest of every workspace package before installing', () => {
    const packages = readdirSync(join(ROOT, 'packages'), { withFileTypes: true }).filter((d) =>
      d.isDirectory(),
    );
    for (const dir of packages) {
      expect(dockerfile, `packages/${dir.name}/package.json`).toContain(
        `COPY packages/${dir.name}/package.json packages/${dir.name}/`,
      );
    }
  });
});

describe('KNOWN_VARIABLES', () => {
  it('lists every variable the config and the worker command read', () => {
    const sources = [
      'packages/shared/src/env-config.ts',
      'packages/cli/src/commands/worker.ts',
      'packages/cli/src/commands/board.ts',
    ];
    const read = new Set<string>();
    for (const file of sources) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const m of text.matchAll(/env\.([A-Z][A-Z0-9_]+)|['"]((?:HFQ|HF|REDIS|LOG)_[A-Z0-9_]+)['"]/g))
        read.add((m[1] ?? m[2]) as string);
    }
    read.delete('HFQ_CONFIG'); // ConfigError's code, not a variable
    for (const variable of read)
      expect(known.has(variable), `${variable} is read but not in KNOWN_VARIABLES`).toBe(true);
  });
});
