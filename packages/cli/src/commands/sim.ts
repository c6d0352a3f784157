import { readFile } from 'node:fs/promises';
import { parseConfigPatch, parseSimEnv, startSim } from '@hfq/sim';

export const SIM_HELP = `hfq sim — run the Hugging Face simulator (Hub mapping API, router, together and cerebras direct APIs)

Environment: SIM_PORT (default 8080), SIM_HOST (default 127.0.0.1), SIM_CONFIG (JSON config file:
tokens, limits, credits, latency, faults). Control at runtime: GET /_sim/stats, POST /_sim/config,
POST /_sim/reset-stats. Prints one JSON line with its base URLs.`;

export async function runSim(env: NodeJS.ProcessEnv): Promise<void> {
  const settings = parseSimEnv(env);
  const patch = settings.configPath
    ? parseConfigPatch(
        JSON.parse(await readFile(settings.configPath, 'utf8')),
        `SIM_CONFIG(${settings.configPath})`,
      )
    : {};
  const sim = await startSim({ ...patch, port: settings.port, host: settings.host });
  const { url, hubUrl, routerUrl, providerUrls } = sim;
  console.log(JSON.stringify({ url, hubUrl, routerUrl, providerUrls }));
  const stop = () => {
    void sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
