import { z } from 'zod';
import { TASKS } from './job-schema.js';

/**
 * An Inference Endpoint of an account: dedicated replicas billed by the hour, limited by requests
 * in flight rather than by rate (see docs/architecture.md, "Dedicated capacity"). Its token is
 * the account's HF token; nothing here is secret, but a URL carrying credentials is refused so
 * that none can reach logs or the board.
 */
const ENDPOINT_NAME = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and "-", at most 63 characters');

export const ENDPOINT_CONFIG = z
  .object({
    /** The endpoint's name in hfq (keys, status, logs). */
    name: ENDPOINT_NAME,
    /** The endpoint's URL (the client's `endpointUrl`). */
    url: z
      .string()
      .url()
      .refine((u) => /^https?:\/\//.test(u), 'an http(s) URL')
      .refine((u) => {
        const url = new URL(u);
        return url.username === '' && url.password === '';
      }, 'a URL without credentials (the account token is sent as a bearer)')
      .transform((u) => u.replace(/\/+$/, '')),
    /** Hugging Face model ids whose jobs this endpoint serves. */
    models: z.array(z.string().min(1).max(200)).min(1).max(64),
    /** Task the endpoint serves; jobs of other tasks never go to it. Default: any task. */
    task: z.enum(TASKS).optional(),
    /** Requests in flight across every worker (replicas × concurrent requests per replica). */
    concurrency: z.number().int().positive().max(10_000),
    /** The endpoint's name in the management API, for state, resume, pause and scale-to-zero. */
    management: z
      .object({ namespace: ENDPOINT_NAME.or(z.string().min(1).max(96)), name: ENDPOINT_NAME })
      .strict()
      .optional(),
    /** Hourly price of the running endpoint, for the cost shown in status. */
    hourlyUsd: z.number().nonnegative().optional(),
    /** Resume a paused (or scaled-to-zero) endpoint when its backlog is not empty. Needs `management`. */
    autoResume: z.boolean().optional(),
    /** Scale to zero after the backlog has been empty this long. Needs `management`. */
    idleScaleToZeroMs: z.number().int().positive().optional(),
    /** Pause (frees instance quota) after the backlog has been empty this long. Needs `management`. */
    idlePauseMs: z.number().int().positive().optional(),
    /**
     * `X-Scale-Up-Timeout` (seconds) sent on the one request that wakes a scaled-to-zero endpoint,
     * so the proxy holds it until a replica is ready; 0 wakes it with plain requests, one at a time.
     * @defaultValue 600
     */
    scaleUpTimeoutS: z.number().int().min(0).max(3_600).optional(),
  })
  .strict()
  .refine((e) => e.management || !(e.autoResume || e.idleScaleToZeroMs || e.idlePauseMs), {
    message: 'autoResume, idleScaleToZeroMs and idlePauseMs need "management": { namespace, name }',
    path: ['management'],
  });
export type EndpointConfig = z.infer<typeof ENDPOINT_CONFIG>;

/**
 * Where a job whose model an endpoint serves goes first:
 * - `endpoint-first`: the endpoint; the router when every slot is busy or the endpoint is paused;
 * - `router-first`: the router; the endpoint when the router is throttled or out of credits;
 * - `endpoint-only`: the endpoint alone (jobs wait for a slot, a cold start or a resume).
 */
export const ROUTING_POLICIES = ['endpoint-first', 'router-first', 'endpoint-only'] as const;
export const ROUTING_POLICY = z.enum(ROUTING_POLICIES);
export type RoutingPolicy = z.infer<typeof ROUTING_POLICY>;

export const ENDPOINTS = z
  .array(ENDPOINT_CONFIG)
  .max(16)
  .refine((list) => new Set(list.map((e) => e.name)).size === list.length, 'endpoint names must be unique');
