import { z } from 'zod';
import { MAX_INPUT_ITEMS, MAX_JOB_BYTES, MAX_MESSAGES, MAX_TEXT_CHARS } from './limits.js';

/**
 * The job schema: one boundary, declared once, used by the producer before anything reaches
 * Redis and again by the worker before anything reaches the upstream.
 */

/** Version of the job data layout written to Redis. A worker reads this and every older one. */
export const JOB_SCHEMA_VERSION = 1;

export const ACCOUNT_ID = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, "_", "." or "-", at most 64 characters');

const MODEL_ID = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*(\/[A-Za-z0-9_.-]+)?$/, 'a Hugging Face model id such as "org/name"');

export const PROVIDER_NAME = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'a provider name such as "together" or "auto"');

const TEXT = z.string().max(MAX_TEXT_CHARS);
const NON_EMPTY_TEXT = TEXT.min(1);

/** Task parameters are passed to the upstream as they are: JSON scalars, arrays and objects. */
const JSON_VALUE: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    z.string().max(MAX_TEXT_CHARS),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(JSON_VALUE).max(MAX_INPUT_ITEMS),
    z.record(z.string().max(200), JSON_VALUE),
  ]),
);
const PARAMETERS = z.record(z.string().max(200), JSON_VALUE);

const common = {
  account: ACCOUNT_ID,
  model: MODEL_ID,
  provider: PROVIDER_NAME.optional(),
  /** Free-form data of the caller's, stored with the job and never sent upstream. */
  metadata: PARAMETERS.optional(),
};

const CHAT_CONTENT_PART = z
  .object({ type: z.string().max(40) })
  .catchall(JSON_VALUE)
  .refine((part) => JSON.stringify(part).length <= MAX_TEXT_CHARS, 'content part too large');

const CHAT_MESSAGE = z
  .object({
    role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']),
    content: z.union([TEXT, z.array(CHAT_CONTENT_PART).max(64)]),
    name: z.string().max(200).optional(),
  })
  .strict();

export const CHAT_COMPLETION_JOB = z
  .object({
    ...common,
    task: z.literal('chat-completion'),
    messages: z.array(CHAT_MESSAGE).min(1).max(MAX_MESSAGES),
    parameters: PARAMETERS.optional(),
  })
  .strict();

const TEXT_INPUT_JOB = <T extends string>(task: T) =>
  z
    .object({ ...common, task: z.literal(task), inputs: NON_EMPTY_TEXT, parameters: PARAMETERS.optional() })
    .strict();

export const FEATURE_EXTRACTION_JOB = z
  .object({
    ...common,
    task: z.literal('feature-extraction'),
    inputs: z.union([NON_EMPTY_TEXT, z.array(NON_EMPTY_TEXT).min(1).max(MAX_INPUT_ITEMS)]),
    parameters: PARAMETERS.optional(),
  })
  .strict();

export const SENTENCE_SIMILARITY_JOB = z
  .object({
    ...common,
    task: z.literal('sentence-similarity'),
    inputs: z
      .object({
        source_sentence: NON_EMPTY_TEXT,
        sentences: z.array(NON_EMPTY_TEXT).min(1).max(MAX_INPUT_ITEMS),
      })
      .strict(),
    parameters: PARAMETERS.optional(),
  })
  .strict();

export const TEXT_GENERATION_JOB = TEXT_INPUT_JOB('text-generation');
export const TEXT_CLASSIFICATION_JOB = TEXT_INPUT_JOB('text-classification');
export const TEXT_TO_IMAGE_JOB = TEXT_INPUT_JOB('text-to-image');
export const SUMMARIZATION_JOB = TEXT_INPUT_JOB('summarization');
export const TRANSLATION_JOB = TEXT_INPUT_JOB('translation');

export const JOB = z
  .discriminatedUnion('task', [
    CHAT_COMPLETION_JOB,
    FEATURE_EXTRACTION_JOB,
    SENTENCE_SIMILARITY_JOB,
    TEXT_GENERATION_JOB,
    TEXT_CLASSIFICATION_JOB,
    TEXT_TO_IMAGE_JOB,
    SUMMARIZATION_JOB,
    TRANSLATION_JOB,
  ])
  .superRefine((job, ctx) => {
    if (JSON.stringify(job).length > MAX_JOB_BYTES) {
      ctx.addIssue({ code: 'custom', message: `job is larger than ${MAX_JOB_BYTES} bytes`, path: [] });
    }
  });

/** An inference job as the caller writes it. */
export type Job = z.infer<typeof JOB>;
export type Task = Job['task'];
export const TASKS = [
  'chat-completion',
  'feature-extraction',
  'sentence-similarity',
  'text-generation',
  'text-classification',
  'text-to-image',
  'summarization',
  'translation',
] as const satisfies readonly Task[];

/** Bookkeeping the worker keeps in the job across runs (never counted as a failure). */
export const JOB_PROGRESS_STATE = z
  .object({
    upstream429s: z.number().int().min(0).default(0),
    throttledMs: z.number().min(0).default(0),
  })
  .strict();
export type JobProgressState = z.infer<typeof JOB_PROGRESS_STATE>;

// ── Batches ────────────────────────────────────────────────────────────────────────

/** A batch id; it is also the job id of the batch's parent job. */
export const BATCH_ID = z
  .string()
  .regex(
    /^(?!\d+$)[A-Za-z0-9_.-]{1,64}$/,
    'letters, digits, "_", "." or "-" (not only digits), at most 64 characters',
  );

/**
 * Where a batch child sits in its batch: written by the producer (and by a child that splits
 * itself), read by the worker to split a too-large request and by the producer to split outputs.
 */
export const BATCH_CHILD = z
  .object({
    /** The batch (= the parent job's id). */
    id: BATCH_ID,
    /** Input index of the child's first item. */
    index: z.number().int().min(0),
    /** Items in the child; coalesced items share one upstream request. */
    count: z.number().int().min(1).max(MAX_INPUT_ITEMS),
    /** Sentence similarity only: sentences per item, to split the scores back per item. */
    sizes: z.array(z.number().int().min(1)).max(MAX_INPUT_ITEMS).optional(),
  })
  .strict();
export type BatchChild = z.infer<typeof BATCH_CHILD>;

/** Data of the jobs in an account's batch queue: the batch parent, and the seal child that holds it open. */
export const BATCH_JOB_DATA = z.discriminatedUnion('kind', [
  z
    .object({
      v: z.literal(JOB_SCHEMA_VERSION),
      kind: z.literal('batch'),
      account: ACCOUNT_ID,
      task: z.enum(TASKS),
      model: MODEL_ID,
      coalesce: z.number().int().min(1).max(MAX_INPUT_ITEMS),
    })
    .strict(),
  z.object({ v: z.literal(JOB_SCHEMA_VERSION), kind: z.literal('seal'), batchId: BATCH_ID }).strict(),
]);
export type BatchJobData = z.infer<typeof BATCH_JOB_DATA>;

/** What hfq writes to Redis as a job's data. `v` lets a newer worker read an older producer's jobs. */
export const JOB_DATA = z
  .object({
    v: z.literal(JOB_SCHEMA_VERSION),
    job: JOB,
    state: JOB_PROGRESS_STATE.optional(),
    /** Epoch ms after which the job must not start (it fails with the reason instead). */
    deadlineAt: z.number().int().positive().optional(),
    /**
     * Epoch ms the job should be done by (the `deadline` option), for the batch route's planner;
     * never a reason to fail the job. Not yet read by the worker.
     */
    dueAt: z.number().int().positive().optional(),
    /** With `dueAt`: the cheapest route that meets it (`cost`), or the fastest (`speed`). */
    preference: z.enum(['cost', 'speed']).optional(),
    /** Set on batch children only (optional, so data written before batches still reads). */
    batch: BATCH_CHILD.optional(),
    /** Enqueued with `unique: false`: new work each time, never answered from the result ledger. */
    fresh: z.literal(true).optional(),
  })
  .strict();
export type JobData = z.infer<typeof JOB_DATA>;
