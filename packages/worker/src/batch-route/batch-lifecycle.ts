/**
 * One provider batch from plan to results, resumable at every step from its record
 * (`batch-record-store.ts`): submit (upload → record the file → mark `creating` → create →
 * record the batch), poll, collect the output and error files, cancel at the hedge time.
 *
 * The one window a crash cannot close by ordering alone is between the provider's answer to
 * create and the record of its id: the record then says `creating`, and the resume looks for a
 * batch made from the recorded input file before it creates one. A crash between the upload's
 * answer and its record leaves an unused file at the provider, never a batch.
 */
import type { ProviderBatchClient } from './batch-api-client.js';
import type { BatchRecord, BatchRecordSpec, BatchRecordStore } from './batch-record-store.js';
import { type BatchRequest, jsonlLine } from './batch-requests.js';
import { type BatchResults, readBatchResults } from './batch-results.js';
import type { BatchView } from './batch-view.js';

const CLOCK_SLACK_SEC = 300;

/** The moments a submit can be interrupted at; tests stop the client there to act out a crash. */
export type SubmitStep = 'upload-answered' | 'upload-recorded' | 'create-answered' | 'create-recorded';

export interface SubmitOptions {
  /** Called after each step; a throw here is a crash at that point. */
  afterStep?: (step: SubmitStep) => void | Promise<void>;
}

export interface SubmitInput extends Omit<BatchRecordSpec, 'jobIds' | 'endpoint'> {
  account: string;
  /** One input file's requests (see `splitIntoFiles`), all for one endpoint. */
  requests: BatchRequest[];
}

/** Submit a batch, or resume one whose record is already there; resolves with the record once it has a batch id. */
export async function submitBatch(
  store: BatchRecordStore,
  client: ProviderBatchClient,
  input: SubmitInput,
  options: SubmitOptions = {},
): Promise<BatchRecord> {
  const { account, requests } = input;
  const endpoint = requests[0]?.endpoint;
  if (!endpoint) throw new Error('a batch needs at least one request');
  const spec: BatchRecordSpec = {
    provider: input.provider,
    keyDomain: input.keyDomain,
    endpoint,
    jobIds: requests.map((request) => request.jobId),
    deadlineMs: input.deadlineMs,
    hedgeAtMs: input.hedgeAtMs,
  };
  const step = async (name: SubmitStep) => options.afterStep?.(name);
  let record = await store.open(account, spec);
  if (record.batchId) return record;

  if (!record.inputFileId) {
    const file = await client.upload(requests.map(jsonlLine).join(''), `${record.id}.jsonl`);
    await step('upload-answered');
    record = await store.update(account, record.id, { state: 'uploaded', inputFileId: file.id });
    await step('upload-recorded');
  }
  const inputFileId = record.inputFileId as string;

  if (record.state === 'creating') {
    const recordId = record.id;
    const made = await client.find(
      (batch) => batch.inputFileId === inputFileId || batch.metadata?.hfq_record === recordId,
      // The batch cannot be older than its record; five minutes for clocks that disagree.
      Math.floor(record.createdAtMs / 1000) - CLOCK_SLACK_SEC,
    );
    if (made) return store.update(account, record.id, { state: 'submitted', batchId: made.id });
  }
  record = await store.update(account, record.id, { state: 'creating' });
  const batch = await client.create(inputFileId, endpoint, { hfq_record: record.id });
  await step('create-answered');
  record = await store.update(account, record.id, { state: 'submitted', batchId: batch.id });
  await step('create-recorded');
  return record;
}

export interface Collected {
  view: BatchView;
  /** Once the batch is terminal: every finished job's result by job id. */
  results: BatchResults | undefined;
}

/**
 * Look at a submitted batch; once it is terminal, download its output and error files. The record
 * is not closed here: the caller closes it (`store.update(…, { state: 'collected' })`) once the
 * results are applied to the jobs, so a crash while downloading or applying collects again.
 */
export async function pollBatch(client: ProviderBatchClient, record: BatchRecord): Promise<Collected> {
  if (!record.batchId) throw new Error(`batch record ${record.id} has no batch id yet`);
  const view = await client.get(record.batchId);
  if (!view.terminal) return { view, results: undefined };
  const files: string[] = [];
  for (const fileId of [view.outputFileId, view.errorFileId]) {
    if (fileId) files.push(await client.download(fileId));
  }
  return { view, results: readBatchResults(record.jobIds, files, record.provider) };
}

/**
 * Cancel a batch at its hedge time. Requests the provider finished stay in the output file; the
 * others must run in real time only once `pollBatch` sees the batch terminal (a `cancelling` batch
 * can still finish lines), so that nothing is paid twice.
 */
export async function cancelBatch(
  store: BatchRecordStore,
  client: ProviderBatchClient,
  record: BatchRecord,
): Promise<BatchView> {
  if (!record.batchId) throw new Error(`batch record ${record.id} has no batch id yet`);
  await store.update(record.account, record.id, { state: 'cancelling' });
  return client.cancel(record.batchId);
}
