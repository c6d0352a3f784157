import { readFile } from 'node:fs/promises';
import { parseConfigPatch } from './config-validate.js';
import type { EndpointConfigInput } from './endpoints/endpoint-config.js';
import { parseSimEnv } from './env.js';
import { type Sim, startSim } from './sim.js';

/**
 * Shell lines to paste where `hfq worker`, `hfq enqueue` or a program using `createWorker` runs,
 * so that it talks to this simulator instead of Hugging Face.
 */
export function exportLines(
  sim: Pick<Sim, 'hubUrl' | 'routerUrl' | 'providerUrls' | 'endpointsApiUrl'>,
): string {
  const providers = Object.entries(sim.providerUrls)
    .map(([name, url]) => `${name}=${url}`)
    .join(',');
  return [
    '# To use this simulator instead of Hugging Face, paste into the shell that runs hfq',
    '# (any token starting with hf_ is accepted; provider keys: any value):',
    `export HF_ROUTER_URL=${sim.routerUrl}`,
    `export HF_HUB_URL=${sim.hubUrl}`,
    `export HFQ_PROVIDER_URLS=${providers}`,
    `export HF_ENDPOINTS_API_URL=${sim.endpointsApiUrl}`,
    'export HF_TOKEN=hf_any TOGETHER_KEY=tg-any',
    '',
  ].join('\n');
}

/**
 * Run the simulator as a process of its own (`hfq sim`, or `node packages/sim/src/main.ts`):
 * configured by `SIM_PORT`, `SIM_HOST` and `SIM_CONFIG`, it prints one JSON line with its base
 * URLs and the `export` lines that point hfq at it, then serves until SIGINT or SIGTERM.
 */
export async function runSimProcess(env: NodeJS.ProcessEnv): Promise<Sim> {
  const settings = parseSimEnv(env);
  let patch = {};
  let endpoints: Record<string, EndpointConfigInput> | undefined;
  if (settings.configPath) {
    const text = await readFile(settings.configPath, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`SIM_CONFIG: ${settings.configPath} is not valid JSON (${String(error)})`);
    }
    // `endpoints` is the Inference Endpoints' own section (validated by parseEndpointConfig).
    if (json !== null && typeof json === 'object' && 'endpoints' in json) {
      const { endpoints: listed, ...rest } = json as { endpoints?: Record<string, EndpointConfigInput> };
      endpoints = listed;
      json = rest;
    }
    patch = parseConfigPatch(json, `SIM_CONFIG(${settings.configPath})`);
  }
  const sim = await startSim({
    ...patch,
    ...(endpoints ? { endpoints } : {}),
    port: settings.port,
    host: settings.host,
  });
  const { url, hubUrl, routerUrl, providerUrls, endpointsApiUrl } = sim;
  process.stdout.write(`${JSON.stringify({ url, hubUrl, routerUrl, providerUrls, endpointsApiUrl })}\n`);
  process.stdout.write(exportLines(sim));
  const stop = (): void => {
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return sim;
}
