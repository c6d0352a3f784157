/** Providers the simulator serves (the catalog's models name them; config limits them). */

/** Providers the simulator serves. `hf-inference` is reachable only through the router. */
export type ProviderName = 'together' | 'cerebras' | 'hf-inference';

/** Providers that also have a direct (non-router) API in the simulator. */
export type DirectProviderName = 'together' | 'cerebras';

export const PROVIDERS: readonly ProviderName[] = ['together', 'cerebras', 'hf-inference'];
export const DIRECT_PROVIDERS: readonly DirectProviderName[] = ['together', 'cerebras'];
