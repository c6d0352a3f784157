import type { RequestHandler } from 'express';

/**
 * Bull Board renders its page from its own template, which links Google Fonts. This rewrites that
 * one HTML answer on its way out: the font link points at the board's own copy, a link to the
 * status view sits in its header, and in read-only mode a banner says so above the UI. Nothing
 * else of Bull Board's page changes.
 */

const GOOGLE_FONTS_LINK = /<link[^>]+fonts\.googleapis\.com[^>]*>/g;
const PRECONNECT = /<link[^>]+rel="preconnect"[^>]*>/g;

const BANNER =
  '<div role="status" style="position:fixed;bottom:0;left:0;right:0;z-index:1000;background:#fff4e5;border-top:1px solid #f5b971;' +
  "color:#7a4100;padding:6px 12px;font:500 13px/1.4 'IBM Plex Sans',system-ui,sans-serif\">" +
  'Read-only board: jobs and queues cannot be changed from here (HFQ_BOARD_READ_ONLY=true) · ' +
  '<a href="/status" style="color:#2456c8">hfq status</a></div>';

/**
 * A link to hfq's status view in Bull Board's header, always visible (Bull Board's own `miscLinks`
 * sit behind its menu button): fixed in the header's row, right of the board's title (which is at
 * most "hfq · read-only") and left of Bull Board's icons, which start well right of it even at 390 px.
 */
const STATUS_LINK =
  '<a id="hfq-status-link" href="/status" style="position:fixed;top:0;left:9.5rem;z-index:1000;height:2.875rem;' +
  "display:flex;align-items:center;padding:0 .25rem;color:#2456c8;font:600 13px/1 'IBM Plex Sans',system-ui,sans-serif;" +
  'text-decoration:underline;white-space:nowrap">hfq status</a>';

export function rewriteBullBoardPage(options: { fontsHref: string; readOnly: boolean }): RequestHandler {
  return (_req, res, next) => {
    const send = res.send.bind(res);
    res.send = (body?: unknown) => {
      const type = String(res.get('Content-Type') ?? '');
      if (
        typeof body === 'string' &&
        (type === '' || type.startsWith('text/html')) &&
        body.includes('__UI_CONFIG__')
      ) {
        let page = body
          .replace(GOOGLE_FONTS_LINK, `<link href="${options.fontsHref}" rel="stylesheet">`)
          .replace(PRECONNECT, '');
        page = page.replace(/<body([^>]*)>/, `<body$1>${STATUS_LINK}${options.readOnly ? BANNER : ''}`);
        return send(page);
      }
      return send(body);
    };
    next();
  };
}
