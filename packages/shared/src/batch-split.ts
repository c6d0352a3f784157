/**
 * The batch split protocol between the worker and the producer (see docs/architecture.md,
 * "Batches are flows"). A coalesced batch child refused as too large does not answer: the worker
 * adds its two halves to the same batch and completes the child with `BatchSplitOutput` as its
 * output, naming the halves in input order. The producer's reader, meeting that output, reads
 * the halves in the child's place. A child that split counts no items itself: its halves do.
 */

/** One half of a split child: its job id in the account queue and the items it carries. */
export interface BatchSplitHalf {
  id: string;
  count: number;
}

/** The output of a child that split itself instead of answering: its halves, in input order. */
export interface BatchSplitOutput {
  hfqSplit: BatchSplitHalf[];
}

/**
 * The halves named by a child's return value (an `InferenceResult`) when the child split itself,
 * else `undefined`. Entries that are not a job id with a positive item count are left out.
 */
export function splitHalvesOf(result: unknown): BatchSplitHalf[] | undefined {
  const output = (result as { output?: unknown } | null)?.output;
  const split =
    typeof output === 'object' && output !== null ? (output as { hfqSplit?: unknown }).hfqSplit : undefined;
  if (!Array.isArray(split)) return undefined;
  return split.filter(
    (half): half is BatchSplitHalf =>
      typeof half?.id === 'string' && Number.isInteger(half?.count) && half.count > 0,
  );
}
