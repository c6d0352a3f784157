# syntax=docker/dockerfile:1
# hfq: one image for every role (worker, board, sim, status, credits, enqueue); the command picks it.
#   docker build -t hfq .
#   docker run --rm hfq --help

ARG NODE_IMAGE=node:22-bookworm-slim
ARG PNPM_VERSION=10.34.9

# ── build: install with the lockfile, compile every package, then deploy the CLI with its
#    production dependencies only (no devDependencies, no optional testcontainers) into /out.
FROM ${NODE_IMAGE} AS build
ARG PNPM_VERSION
ENV CI=true
RUN npm install -g "pnpm@${PNPM_VERSION}" && npm cache clean --force
WORKDIR /src
# Manifests first: the install layer is reused until a manifest or the lockfile changes.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
COPY packages/shared/package.json packages/shared/
COPY packages/producer/package.json packages/producer/
COPY packages/worker/package.json packages/worker/
COPY packages/sim/package.json packages/sim/
COPY packages/cli/package.json packages/cli/
RUN pnpm install --frozen-lockfile
COPY tsconfig.base.json ./
COPY packages packages
RUN pnpm -r build \
 && pnpm --filter @hfq/cli deploy --legacy --prod --no-optional /out \
 && node /out/dist/main.js --help > /dev/null

# ── runtime: Node and the deployed CLI, nothing else; runs as the image's unprivileged `node` user.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HFQ_METRICS_PORT=9464 \
    HFQ_BOARD_PORT=3000
WORKDIR /app
COPY --from=build --chown=root:root /out /app
USER node
# 9464: a worker's /metrics, /healthz, /readyz. 3000: the board (hfq board).
EXPOSE 9464 3000
# Liveness of a worker. The board and the simulator set their own check (see docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HFQ_METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM reaches node directly (exec form): the worker's graceful shutdown runs.
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["worker"]
