/**
 * Points inside a batch's creation and feed where a crash test can stop a producer process (for
 * example with `process.kill(process.pid, 'SIGKILL')`), so the interleaving it tests is forced
 * rather than hoped for. Empty in production; nothing in hfq sets them.
 */
export const batchHooks: {
  /** The batch state hash is written; its flow (parent and seal) is not added yet. */
  afterStateWritten?: (batchId: string) => Promise<void> | void;
  /** A chunk of children is in Redis (with its layout entries); `children` counts them all so far. */
  afterChunk?: (batchId: string, children: number) => Promise<void> | void;
} = {};
