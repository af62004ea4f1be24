# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the compiled code only, as a non-root user.
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    TVSYNC_CONFIG=/etc/tvsync/tvsync.yaml
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config/example.yaml ./config/example.yaml
COPY config/demo ./config/demo
USER node
# The operations endpoint (http.port in the config): /healthz, /readyz, /metrics, sync-now.
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["node", "dist/cli/main.js", "healthcheck"]
# tini forwards SIGTERM to node, so running jobs are finished or handed back before exit.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--enable-source-maps", "dist/cli/main.js"]
CMD ["run"]
