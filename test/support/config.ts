import { ConfigError, type Env, loadConfig } from '@hfq/shared';

/** A `readFile` for `loadConfig` in tests that have no files: every read fails. */
export const noFile = (): string => {
  throw new Error('no file');
};

/** The ConfigError `loadConfig` throws for `env`; anything else it throws, or a config it loads, fails the test. */
export function loadConfigError(env: Env, readFile: (path: string) => string = noFile): ConfigError {
  try {
    loadConfig(env, readFile);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
