import { readFile } from 'node:fs/promises';
import { parseConfigPatch } from './config-validate.js';
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
  if (settings.configPath) {
    const text = await readFile(settings.configPath, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`SIM_CONFIG: ${settings.configPath} is not valid JSON (${String(error)})`);
    }
    patch = parseConfigPatch(json, `SIM_CONFIG(${settings.configPath})`);
  }
  const sim = await startSim({ ...patch, port: settings.port, host: settings.host });
  const { url, hubUrl, routerUrl, providerUrls } = sim;
  process.stdout.write(`${JSON.stringify({ url, hubUrl, routerUrl, providerUrls })}\n`);
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
