import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { CallFailure } from './inference-call.js';

/**
 * One OpenTelemetry span per upstream call, child of BullMQ's job span when the worker's
 * `telemetry` option is set. Through `@opentelemetry/api` only: without a registered SDK the
 * tracer is a no-op and this costs a function call. Attributes carry no secret: the route,
 * the provider, the HTTP status and the time the call waited for its permit.
 */

const tracer = trace.getTracer('hfq');

export interface UpstreamSpanInfo {
  account: string;
  route: 'hf-router' | 'provider-key' | 'endpoint';
  provider: string | undefined;
  /** Time the request waited for its domain's permit (pacing and 429 pauses), ms. */
  throttleWaitMs: number;
}

export async function tracedUpstreamCall<T extends { provider: string }>(
  info: UpstreamSpanInfo,
  task: string,
  call: () => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(
    `hfq upstream ${task}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'hfq.account': info.account,
        'hfq.task': task,
        'hfq.route': info.route,
        'hfq.throttle_wait_ms': info.throttleWaitMs,
        ...(info.provider ? { 'hfq.provider': info.provider } : {}),
      },
    },
    async (span: Span) => {
      try {
        const outcome = await call();
        span.setAttributes({ 'hfq.provider': outcome.provider, 'http.response.status_code': 200 });
        return outcome;
      } catch (err) {
        if (err instanceof CallFailure) {
          const status = err.error.info.status;
          span.setAttributes({
            'http.response.status_code': status ?? 0,
            ...(err.error.info.provider ? { 'hfq.provider': err.error.info.provider } : {}),
            'hfq.retry_class': err.error.retryClass,
          });
        }
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).name });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}
