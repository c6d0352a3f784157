/** The simulator's process settings, read from an environment (pure: no I/O). */

export interface SimEnv {
  port: number;
  host: string;
  /** Path of a JSON `SimConfigPatch` file, if any. */
  configPath: string | null;
}

export class SimEnvError extends Error {
  override readonly name = 'SimEnvError';
}

/**
 * `SIM_PORT` (default 8080), `SIM_HOST` (default 127.0.0.1), `SIM_CONFIG` (optional path to a
 * JSON config file).
 */
export function parseSimEnv(env: Record<string, string | undefined>): SimEnv {
  const rawPort = env.SIM_PORT?.trim() || '8080';
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new SimEnvError(`SIM_PORT: expected an integer in 0..65535, got ${JSON.stringify(rawPort)}`);
  }
  return { port, host: env.SIM_HOST?.trim() || '127.0.0.1', configPath: env.SIM_CONFIG?.trim() || null };
}
