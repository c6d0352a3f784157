/**
 * `/_sim`: control endpoints for a simulator running as its own process, and the images that
 * text-to-image answers by URL. These requests are not recorded.
 *
 *   GET  /_sim/health
 *   GET  /_sim/stats[?windowMs=1000&windowMs=60000][&log=1]
 *   POST /_sim/config        JSON SimConfigPatch
 *   POST /_sim/reset-stats
 *   POST /_sim/script        {"token": "...", "steps": [...]}
 *   GET  /_sim/images/{hash}.png
 */
import { parseConfigPatch, parseScript, SimConfigError } from '../config-validate.js';
import { errorReply, isRecord, jsonReply, parseJson, readBody, sendReply } from '../http/reply.js';
import { colourOfHash, IMAGE_SIZE } from '../outputs.js';
import { solidPng } from '../png.js';
import type { SimState } from '../state.js';
import type { Exchange } from './exchange.js';

const MAX_CONTROL_BODY = 16 * 1024 * 1024;

export interface ControlActions {
  stats(includeLog: boolean, windows: number[]): unknown;
  configure(patch: ReturnType<typeof parseConfigPatch>): void;
  resetStats(): void;
  script(token: string, steps: ReturnType<typeof parseScript>): void;
}

export async function handleControl(
  state: SimState,
  exchange: Pick<Exchange, 'req' | 'res' | 'url'>,
  rest: string,
  actions: ControlActions,
): Promise<void> {
  const { req, res, url } = exchange;
  const route = `${req.method} ${rest}`;
  const image = /^images\/([0-9a-f]{8})\.png$/.exec(rest);
  if (req.method === 'GET' && image) {
    const png = solidPng(colourOfHash(Number.parseInt(image[1] ?? '0', 16)), IMAGE_SIZE);
    sendReply(res, { status: 200, body: png, contentType: 'image/png' });
    return;
  }
  if (route === 'GET health') {
    sendReply(res, jsonReply(200, { ok: true, url: state.url }));
    return;
  }
  if (route === 'GET stats') {
    const windows = url.searchParams
      .getAll('windowMs')
      .map(Number)
      .filter((value) => value > 0);
    sendReply(res, jsonReply(200, actions.stats(url.searchParams.get('log') === '1', windows)));
    return;
  }
  if (route === 'POST reset-stats') {
    actions.resetStats();
    sendReply(res, jsonReply(200, { ok: true }));
    return;
  }
  if (route === 'POST config' || route === 'POST script') {
    const body = parseJson(await readBody(req, MAX_CONTROL_BODY));
    try {
      if (route === 'POST config') {
        actions.configure(parseConfigPatch(body));
      } else {
        if (!isRecord(body) || typeof body.token !== 'string')
          throw new SimConfigError('token: expected a string');
        actions.script(body.token, parseScript(body.steps));
      }
    } catch (error) {
      if (!(error instanceof SimConfigError)) throw error;
      sendReply(res, errorReply(400, error.message));
      return;
    }
    sendReply(res, jsonReply(200, { ok: true }));
    return;
  }
  sendReply(res, errorReply(404, 'Not Found'));
}
