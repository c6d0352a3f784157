import { runSimProcess } from '@hfq/sim';

export const SIM_HELP = `hfq sim — run the Hugging Face simulator (Hub mapping API, router, together and cerebras direct APIs)

Environment: SIM_PORT (default 8080), SIM_HOST (default 127.0.0.1), SIM_CONFIG (JSON config file:
tokens, limits, credits, latency, faults). Control at runtime: GET /_sim/stats, POST /_sim/config,
POST /_sim/reset-stats. Prints one JSON line with its base URLs, then the \`export\` lines that point
hfq (hfq worker, hfq enqueue, createWorker) at it, ready to paste into another shell.

Models it knows: every model README's examples name (chat, text generation, embeddings, sentence
similarity, classification, summarization, translation, text-to-image); others answer 404 from
its Hub, as Hugging Face does for a model that does not exist.`;

export async function runSim(env: NodeJS.ProcessEnv): Promise<void> {
  await runSimProcess(env);
}
