import { scrubSecrets } from '@hfq/shared/internal';

/**
 * The Inference Endpoints management API: an endpoint's state, and resume, pause and
 * scale-to-zero, with the account's HF token as bearer. Errors carry the status and the API's
 * message, never the token.
 */

export const ENDPOINTS_API_URL = 'https://api.endpoints.huggingface.cloud';

export type ManagementAction = 'resume' | 'pause' | 'scale-to-zero';

/** `status.state` as the API reports it: pending, initializing, updating, updateFailed, running, paused, failed, scaledToZero. */
export type ManagedState = string;

export class EndpointManagement {
  constructor(
    private readonly token: string,
    private readonly baseUrl = ENDPOINTS_API_URL,
    private readonly timeoutMs = 10_000,
  ) {}

  state(namespace: string, name: string): Promise<ManagedState> {
    return this.call('GET', namespace, name);
  }

  act(namespace: string, name: string, action: ManagementAction): Promise<ManagedState> {
    return this.call('POST', namespace, name, action);
  }

  private async call(
    method: 'GET' | 'POST',
    namespace: string,
    name: string,
    action?: ManagementAction,
  ): Promise<ManagedState> {
    const path = `/v2/endpoint/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}${action ? `/${action}` : ''}`;
    const response = await fetch(`${this.baseUrl.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await response.text();
    if (!response.ok) {
      const message = scrubSecrets(text.slice(0, 300), [this.token]);
      throw new Error(`management API ${method} ${path}: ${response.status} ${message}`);
    }
    try {
      const body = JSON.parse(text) as { status?: { state?: unknown } };
      const state = body.status?.state;
      if (typeof state === 'string') return state;
    } catch {
      // fall through
    }
    throw new Error(`management API ${method} ${path}: no status.state in the answer`);
  }
}
