import type { RequestHandler } from 'express';

/**
 * Bull Board renders its page from its own template, which links Google Fonts. This rewrites that
 * one HTML answer on its way out: the font link points at the board's own copy, and in read-only
 * mode a banner says so above the UI. Nothing else of Bull Board's page changes.
 */

const GOOGLE_FONTS_LINK = /<link[^>]+fonts\.googleapis\.com[^>]*>/g;
const PRECONNECT = /<link[^>]+rel="preconnect"[^>]*>/g;

const BANNER =
  '<div role="status" style="position:fixed;bottom:0;left:0;right:0;z-index:1000;background:#fff4e5;border-top:1px solid #f5b971;' +
  "color:#7a4100;padding:6px 12px;font:500 13px/1.4 'IBM Plex Sans',system-ui,sans-serif\">" +
  'Read-only board: jobs and queues cannot be changed from here (HFQ_BOARD_READ_ONLY=true) · ' +
  '<a href="/status" style="color:#2456c8">hfq status</a></div>';

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
        if (options.readOnly) page = page.replace(/<body([^>]*)>/, `<body$1>${BANNER}`);
        return send(page);
      }
      return send(body);
    };
    next();
  };
}
