/**
 * Run the simulator as its own process. Prints one JSON line with its base URLs, then serves
 * until SIGINT or SIGTERM.
 */
import { readFile } from 'node:fs/promises';
import { parseConfigPatch } from './config-validate.js';
import { parseSimEnv } from './env.js';
import { startSim } from './sim.js';

async function main(): Promise<void> {
  const env = parseSimEnv(process.env);
  let patch = {};
  if (env.configPath) {
    const text = await readFile(env.configPath, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`SIM_CONFIG: ${env.configPath} is not valid JSON (${String(error)})`);
    }
    patch = parseConfigPatch(json, `SIM_CONFIG(${env.configPath})`);
  }
  const sim = await startSim({ ...patch, port: env.port, host: env.host });
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
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
