/** Run the simulator as its own process (see `runSimProcess`). */
import { runSimProcess } from './process.js';

runSimProcess(process.env).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
