import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';

/**
 * Everything the board's pages load, served from this package (no CDN: the board works offline
 * and tells no third party when it is open): the charting library (uPlot), the IBM Plex fonts
 * Bull Board's page asks for (from @fontsource), and the status page's chart script.
 */

export const ASSETS_PATH = '/hfq-assets';
/** The stylesheet that replaces Bull Board's Google Fonts link. */
export const FONTS_CSS = `${ASSETS_PATH}/fonts.css`;

const require = createRequire(import.meta.url);
/** src/board and dist/board are both two levels below the package root, where assets/ is. */
const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The weights Bull Board's page uses. */
const FONTS = [
  { pkg: '@fontsource/ibm-plex-sans', weights: ['400', '500', '600'] },
  { pkg: '@fontsource/ibm-plex-mono', weights: ['400', '500'] },
] as const;

const IMMUTABLE = { maxAge: '7d', immutable: true, index: false, fallthrough: false } as const;
/** pnpm installs packages under node_modules/.pnpm: a dot folder that `send` refuses by default. */
const FILE = { maxAge: '7d', dotfiles: 'allow' } as const;

/** One stylesheet with every face, its `url(./files/…)` pointing at the files served below. */
function fontsStylesheet(): string {
  return FONTS.flatMap(({ pkg, weights }) =>
    weights.map((w) =>
      readFileSync(require.resolve(`${pkg}/${w}.css`), 'utf8').replaceAll(
        'url(./files/',
        `url(${ASSETS_PATH}/fonts/${pkg.split('/')[1]}/`,
      ),
    ),
  ).join('\n');
}

export function boardAssets(): Router {
  const router = express.Router();
  const fontsCss = fontsStylesheet();
  const uplotJs = require.resolve('uplot/dist/uPlot.iife.min.js');
  const uplotCss = require.resolve('uplot/dist/uPlot.min.css');
  const statusJs = join(PACKAGE_ROOT, 'assets', 'status-charts.js');
  router.get(FONTS_CSS, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=604800').type('text/css').send(fontsCss);
  });
  router.get(`${ASSETS_PATH}/uplot.js`, (_req, res) => res.sendFile(uplotJs, FILE));
  router.get(`${ASSETS_PATH}/uplot.css`, (_req, res) => res.sendFile(uplotCss, FILE));
  router.get(`${ASSETS_PATH}/status-charts.js`, (_req, res) =>
    res.set('Cache-Control', 'no-cache').sendFile(statusJs),
  );
  for (const { pkg } of FONTS) {
    const files = join(dirname(require.resolve(`${pkg}/400.css`)), 'files');
    router.use(`${ASSETS_PATH}/fonts/${pkg.split('/')[1]}`, express.static(files, IMMUTABLE));
  }
  return router;
}
