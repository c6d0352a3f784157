import { readFile } from 'node:fs/promises';
import { parseConfigPatch } from './config-validate.js';
import type { EndpointConfigInput } from './endpoints/endpoint-config.js';
import { parseSimEnv } from './env.js';
import { type Sim, startSim } from './sim.js';

/**
 * Run the simulator as a process of its own (`hfq sim`, or `node packages/sim/src/main.ts`):
 * configured by `SIM_PORT`, `SIM_HOST` and `SIM_CONFIG`, it prints one JSON line with its base
 * URLs, then serves until SIGINT or SIGTERM.
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
