import type { AccountConfig, Job, RateWindow, UpstreamUrls } from '@hfq/shared';
import { credentialId, type DomainRef, providerKeyOf, TIER_TABLE } from '@hfq/shared/internal';
import { rewriteUrl } from './upstream-fetch.js';

/**
 * Where a job's request goes (see docs/architecture.md, "What a 402 does"): the HF router with the account's token, or, once HF
 * credits are gone, a provider's own API with the user's key, in direct mode with an explicit
 * provider. Each credential is its own rate-limit domain, named by a hash, never the credential.
 */

/** Limit of a provider key when its config names none. */
export const DEFAULT_PROVIDER_KEY_LIMITS: RateWindow[] = [{ max: 10, durationMs: 1_000 }];

export interface ProviderRoute {
  provider: string;
  key: string;
  domain: DomainRef;
}

/** HF task ids of jobs as the Hub's provider mapping names them. */
const MAPPING_TASK: Record<Job['task'], string> = {
  'chat-completion': 'conversational',
  'feature-extraction': 'feature-extraction',
  'sentence-similarity': 'sentence-similarity',
  'text-classification': 'text-classification',
  'text-generation': 'text-generation',
  'text-to-image': 'text-to-image',
  summarization: 'summarization',
  translation: 'translation',
};

const MAPPING_TTL_MS = 10 * 60_000;

/** What the Hub's mapping says of one provider for a model: the task, and the provider's own model id. */
interface ServedBy {
  task: string;
  providerId: string | undefined;
}

export class RouteSelection {
  /** The router's domain for provider `auto` (or none): the account's credential. */
  readonly routerDomain: DomainRef;
  private readonly providerRouterDomains = new Map<string, DomainRef>();
  private readonly providers = new Map<string, ProviderRoute>();
  private readonly mappings = new Map<
    string,
    { at: number; served: Promise<Map<string, ServedBy> | undefined> }
  >();

  private constructor(
    readonly account: AccountConfig,
    private readonly upstream: UpstreamUrls,
    routerDomainId: string,
  ) {
    const windows = account.limits ?? [account.limit ?? TIER_TABLE[account.tier].inference];
    this.routerDomain = { id: routerDomainId, windows };
  }

  static async create(account: AccountConfig, upstream: UpstreamUrls): Promise<RouteSelection> {
    const selection = new RouteSelection(account, upstream, await credentialId(account.hfToken));
    for (const provider of Object.keys(account.providerKeys ?? {})) {
      const entry = providerKeyOf(account, provider);
      if (!entry) continue;
      selection.providers.set(provider, {
        provider,
        key: entry.key,
        domain: { id: await credentialId(entry.key), windows: entry.limits ?? DEFAULT_PROVIDER_KEY_LIMITS },
      });
    }
    return selection;
  }

  /**
   * The rate-limit domain of a request through the router: the account's router domain for
   * provider `auto` or none; for an explicit provider, a domain of its own (the credential's hash
   * and the provider, never the credential), because a partner provider's limits and
   * `Retry-After` pass through the router: a 429 from one provider pauses that provider's jobs
   * only. Its windows are the account's router windows, as an estimate the limiter refines.
   */
  routerDomainFor(provider: string | undefined): DomainRef {
    if (provider === undefined || provider === 'auto') return this.routerDomain;
    let domain = this.providerRouterDomains.get(provider);
    if (!domain) {
      domain = { id: `${this.routerDomain.id}.${provider}`, windows: this.routerDomain.windows };
      this.providerRouterDomains.set(provider, domain);
    }
    return domain;
  }

  /** The router domains in use: the account's and those of the explicit providers seen so far. */
  routerDomains(): DomainRef[] {
    return [this.routerDomain, ...this.providerRouterDomains.values()];
  }

  /** Every secret of the account, for scrubbing texts that leave the worker. */
  secrets(): string[] {
    return [this.account.hfToken, ...[...this.providers.values()].map((p) => p.key)];
  }

  providerDomains(): ProviderRoute[] {
    return [...this.providers.values()];
  }

  /**
   * Provider keys to try for a job, in order: the job's own provider if the account has its key,
   * then `fallbackProviders`; only providers the Hub's mapping says serve the model for the task.
   */
  async candidates(job: Job, exclude: ReadonlySet<string>): Promise<ProviderRoute[]> {
    const order = [
      ...(job.provider && job.provider !== 'auto' ? [job.provider] : []),
      ...(this.account.fallbackProviders ?? []),
      ...this.providers.keys(),
    ];
    const unique = [...new Set(order)].filter((p) => this.providers.has(p) && !exclude.has(p));
    if (unique.length === 0) return [];
    const served = await this.servedBy(job);
    const wanted = MAPPING_TASK[job.task];
    return unique
      .filter((p) => served === undefined || served.get(p)?.task === wanted)
      .map((p) => this.providers.get(p) as ProviderRoute);
  }

  /** Drop the cached Hub mapping of a model (a provider said it does not serve it). */
  forgetMapping(model: string): void {
    this.mappings.delete(model);
  }

  /**
   * The provider's own id of a model (what a batch line's `model` must be: a batch is sent to the
   * provider directly), from the Hub's mapping; the HF id when the Hub does not name one.
   */
  async providerModelId(job: Job, provider: string): Promise<string> {
    return (await this.servedBy(job))?.get(provider)?.providerId ?? job.model;
  }

  /** Provider → task of the model, from the Hub; undefined when the Hub cannot say (then every key is tried). */
  private servedBy(job: Job): Promise<Map<string, ServedBy> | undefined> {
    const cached = this.mappings.get(job.model);
    if (cached && Date.now() - cached.at < MAPPING_TTL_MS) return cached.served;
    const served = this.fetchMapping(job.model);
    this.mappings.set(job.model, { at: Date.now(), served });
    return served;
  }

  private async fetchMapping(model: string): Promise<Map<string, ServedBy> | undefined> {
    const url = rewriteUrl(
      `https://huggingface.co/api/models/${model}?expand[]=inferenceProviderMapping`,
      this.upstream,
    );
    try {
      const response = await fetch(url, {
        headers: { Authorization: `Bearer ${this.account.hfToken}` },
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) {
        if (response.status === 404) return new Map();
        this.mappings.delete(model);
        return undefined;
      }
      const body = (await response.json()) as { inferenceProviderMapping?: unknown };
      const mapping = body.inferenceProviderMapping;
      const served = new Map<string, ServedBy>();
      type Entry = { provider?: string; task?: string; status?: string; providerId?: unknown };
      const add = (provider: string | undefined, entry: Entry | undefined) => {
        if (!provider || !entry?.task || entry.status === 'error') return;
        const providerId = typeof entry.providerId === 'string' ? entry.providerId : undefined;
        served.set(provider, { task: entry.task, providerId });
      };
      if (Array.isArray(mapping)) {
        for (const entry of mapping as Entry[]) add(entry.provider, entry);
      } else if (mapping && typeof mapping === 'object') {
        for (const [provider, entry] of Object.entries(mapping as Record<string, Entry>))
          add(provider, entry);
      }
      return served;
    } catch {
      this.mappings.delete(model);
      return undefined;
    }
  }
}
