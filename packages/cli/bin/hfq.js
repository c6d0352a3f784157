#!/usr/bin/env node
// The `hfq` command runs the built CLI (`pnpm build`). In a source checkout, `pnpm hfq …` runs it
// from source without building. This file exists so that installing the workspace can link the
// command before anything is built.
try {
  await import('../dist/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    console.error('hfq is not built: run `pnpm build` first, or `pnpm hfq …` from the repository');
    process.exit(1);
  }
  throw err;
}
