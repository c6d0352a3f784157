import { JOB, type Job, LIMITS, type Task, ValidationError } from '@hfq/shared';
import { type BatchChild, parseOrThrow } from '@hfq/shared/internal';

/**
 * Batch items and the child jobs made of them (see docs/architecture.md, "Batches are flows"). An item is one task input:
 * - `feature-extraction`: one text (its output is that text's embedding);
 * - `sentence-similarity`: `{ source_sentence, sentences }` (its output is one score per sentence);
 * - `chat-completion`: the messages, or a string as one user message;
 * - every other task: its `inputs` string.
 * Tasks whose API takes arrays coalesce up to `coalesce` input elements into one child (one
 * upstream request); the others make one child per item.
 */

/** What every item of a batch shares. */
export interface BatchBase {
  account: string;
  task: Task;
  model: string;
  /** Provider (`auto` or a name). @defaultValue the router's choice */
  provider?: string;
  /** Task parameters, the same for every item. */
  parameters?: Record<string, unknown>;
}

/** Tasks whose upstream API takes several inputs in one request. */
export const COALESCING_TASKS: readonly Task[] = ['feature-extraction', 'sentence-similarity'];

/** A child job to add: its job and where its items sit in the input. */
export interface ChildPlan {
  job: Job;
  batch: Omit<BatchChild, 'id'>;
}

/** Room left in a job for the fields other than the inputs. */
const JOB_BYTES_MARGIN = 4 * 1024;

/** The one-item job of `item`, validated; errors name the item's index. */
export function itemJob(base: BatchBase, item: unknown, index: number, validate = true): Job {
  const job = { ...baseFields(base), ...inputFields(base.task, item) };
  if (!validate) return job as Job;
  if (base.task === 'feature-extraction' && typeof item !== 'string') {
    // One item, one embedding: a list of texts is several items.
    throw new ValidationError(`batch item ${index}`, [
      { path: `items.${index}`, message: 'one text (a string) per item' },
    ]);
  }
  try {
    return parseOrThrow(JOB, job, `batch item ${index}`);
  } catch (err) {
    if (err instanceof ValidationError) {
      throw new ValidationError(
        `batch item ${index}`,
        err.issues.map((issue) => ({
          path: `items.${index}${issue.path ? `.${issue.path}` : ''}`,
          message: issue.message,
        })),
      );
    }
    throw err;
  }
}

/** Validate what the items share (account, model, provider, parameters) with a stand-in input. */
export function validateBase(base: BatchBase): void {
  const probe: Record<Task, unknown> = {
    'chat-completion': 'x',
    'feature-extraction': 'x',
    'sentence-similarity': { source_sentence: 'x', sentences: ['x'] },
    'text-classification': 'x',
    'text-generation': 'x',
    'text-to-image': 'x',
    summarization: 'x',
    translation: 'x',
  };
  if (!(base.task in probe)) {
    throw new ValidationError('batch', [
      { path: 'task', message: `one of ${Object.keys(probe).join(', ')}` },
    ]);
  }
  parseOrThrow(JOB, { ...baseFields(base), ...inputFields(base.task, probe[base.task]) }, 'batch');
}

/**
 * Groups validated one-item jobs into child jobs, in input order. Without coalescing (or for tasks
 * that take one input), each item is a child of its own.
 */
export class ChildPlanner {
  private readonly maxElements: number;
  private pending: { job: Job; elements: number }[] = [];
  private pendingIndex = 0;
  private pendingElements = 0;
  private pendingBytes = 0;

  constructor(
    private readonly task: Task,
    coalesce: number,
  ) {
    this.maxElements = COALESCING_TASKS.includes(task) ? Math.min(coalesce, LIMITS.MAX_INPUT_ITEMS) : 1;
  }

  /** Items read but not yet in a returned child. */
  get openItems(): number {
    return this.pending.length;
  }

  /** Add the job of the item at `index`; returns the children this completes. */
  push(index: number, job: Job): ChildPlan[] {
    if (this.maxElements === 1) return [{ job, batch: { index, count: 1 } }];
    const elements = job.task === 'sentence-similarity' ? job.inputs.sentences.length : 1;
    const bytes = JSON.stringify(
      job.task === 'sentence-similarity' ? job.inputs.sentences : inputsOf(job),
    ).length;
    const out: ChildPlan[] = [];
    const first = this.pending[0]?.job;
    const sameSource =
      first?.task !== 'sentence-similarity' ||
      job.task !== 'sentence-similarity' ||
      first.inputs.source_sentence === job.inputs.source_sentence;
    if (
      this.pending.length > 0 &&
      (!sameSource ||
        this.pendingElements + elements > this.maxElements ||
        this.pendingBytes + bytes > LIMITS.MAX_JOB_BYTES - JOB_BYTES_MARGIN)
    ) {
      out.push(...this.flush());
    }
    if (this.pending.length === 0) this.pendingIndex = index;
    this.pending.push({ job, elements });
    this.pendingElements += elements;
    this.pendingBytes += bytes;
    if (this.pendingElements >= this.maxElements) out.push(...this.flush());
    return out;
  }

  /** The child still open, if any. */
  flush(): ChildPlan[] {
    const items = this.pending;
    if (items.length === 0) return [];
    const index = this.pendingIndex;
    this.pending = [];
    this.pendingElements = 0;
    this.pendingBytes = 0;
    const first = items[0]?.job as Job;
    if (first.task === 'sentence-similarity') {
      const sentences = items.flatMap(({ job }) =>
        job.task === 'sentence-similarity' ? job.inputs.sentences : [],
      );
      return [
        {
          job: { ...first, inputs: { source_sentence: first.inputs.source_sentence, sentences } },
          batch: { index, count: items.length, sizes: items.map((i) => i.elements) },
        },
      ];
    }
    // Feature extraction: an array input, even for one item, so the output is always one entry per item.
    const inputs = items.map(({ job }) => inputsOf(job) as string);
    return [{ job: { ...first, inputs } as Job, batch: { index, count: items.length } }];
  }
}

/** One result per item of a finished child, from its output; a wrong-sized output fails its items. */
export function splitOutput(
  job: Job,
  batch: Pick<BatchChild, 'count' | 'sizes'>,
  output: unknown,
): ({ ok: true; output: unknown } | { ok: false; error: string })[] {
  const mismatch = (got: string) =>
    Array.from({ length: batch.count }, () => ({
      ok: false as const,
      error: `upstream answered ${got} for ${batch.count} item(s)`,
    }));
  if (job.task === 'feature-extraction' && Array.isArray(job.inputs)) {
    if (!Array.isArray(output) || output.length !== job.inputs.length) return mismatch(describe(output));
    return output.map((value) => ({ ok: true as const, output: value }));
  }
  if (job.task === 'sentence-similarity' && batch.sizes) {
    const expected = batch.sizes.reduce((sum, n) => sum + n, 0);
    if (!Array.isArray(output) || output.length !== expected) return mismatch(describe(output));
    let at = 0;
    return batch.sizes.map((n) => {
      const slice = output.slice(at, at + n);
      at += n;
      return { ok: true as const, output: slice };
    });
  }
  if (batch.count !== 1) return mismatch('one output');
  return [{ ok: true, output }];
}

function describe(output: unknown): string {
  return Array.isArray(output) ? `${output.length} outputs` : 'a non-array output';
}

function baseFields(base: BatchBase): Record<string, unknown> {
  return {
    account: base.account,
    task: base.task,
    model: base.model,
    ...(base.provider !== undefined ? { provider: base.provider } : {}),
    ...(base.parameters !== undefined ? { parameters: base.parameters } : {}),
  };
}

function inputFields(task: Task, item: unknown): Record<string, unknown> {
  if (task === 'chat-completion') {
    return { messages: typeof item === 'string' ? [{ role: 'user', content: item }] : item };
  }
  return { inputs: item };
}

function inputsOf(job: Job): unknown {
  return job.task === 'chat-completion' ? job.messages : job.inputs;
}
