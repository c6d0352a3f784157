/** Named bounds on what hfq accepts. Each is checked where input crosses a boundary. */

/** Largest serialised job (JSON bytes) accepted by the producer and the worker. */
export const MAX_JOB_BYTES = 512 * 1024;
/** Longest single text input or message content, in characters. */
export const MAX_TEXT_CHARS = 256 * 1024;
/** Most items in one array input (feature-extraction, sentence-similarity). */
export const MAX_INPUT_ITEMS = 4_096;
/** Most chat messages in one job. */
export const MAX_MESSAGES = 1_024;
/** Largest binary output (for example an image) kept as a job's return value, in bytes. */
export const MAX_BINARY_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Upper bound on any single wait hfq derives from an upstream answer (Retry-After and the like). */
export const MAX_THROTTLE_DELAY_MS = 15 * 60 * 1000;
/** Upper bound on a pause for a quota whose reset the upstream names in words ("reset hourly", "daily"). */
export const MAX_QUOTA_DELAY_MS = 24 * 60 * 60 * 1000;
