import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources through the `hfq-source` export condition.
// Only `hfq-source` and `node` are passed on to Node for external packages: adding `import`
// there makes Express 5 load an ESM-only copy of a dependency.
export default defineConfig({
  resolve: { conditions: ['hfq-source', 'node', 'import', 'module', 'default'] },
  ssr: { resolve: { conditions: ['hfq-source', 'node'], externalConditions: ['hfq-source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One file at a time: several files each spawning worker processes on a 2-core machine would
    // make the timing-sensitive tests (pacing, pauses) measure CPU contention instead of hfq.
    fileParallelism: false,
    sequence: { hooks: 'stack' },
    // .ci/run reads the counts from the JSON report for its closing line.
    reporters: process.env.HFQ_VITEST_JSON
      ? ['default', ['json', { outputFile: process.env.HFQ_VITEST_JSON }]]
      : ['default'],
  },
});
