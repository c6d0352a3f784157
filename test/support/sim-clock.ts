import { type Sim, startSim } from '@hfq/sim';
import { afterAll, beforeAll } from 'vitest';

/**
 * One simulator for a whole test file, on a clock the tests move by hand (no sleeping): started
 * before the file's first test, closed after its last. The value returned stands for that
 * simulator inside the tests (using it outside a test is an error that says so).
 */
export function simForFile(now: () => number): Sim {
  let running: Sim | undefined;
  beforeAll(async () => {
    running = await startSim({ now });
  });
  afterAll(async () => {
    await running?.close();
  });
  return new Proxy({} as Sim, {
    get(_, key) {
      if (running === undefined) throw new Error('the simulator runs only inside the tests of its file');
      const value: unknown = Reflect.get(running, key);
      return typeof value === 'function' ? value.bind(running) : value;
    },
  });
}
