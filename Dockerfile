# Threshold API and worker image: compiled JavaScript run with plain node (no TypeScript loader).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY machines ./machines
COPY workers ./workers
COPY scripts ./scripts
COPY contracts ./contracts
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# Only what the processes run: compiled code, the launcher and the SQL migrations.
COPY --from=build /app/dist ./dist
COPY scripts/run.mjs ./scripts/run.mjs
COPY db ./db
# DATA_DIR (./data) is only written in the embedded mode; let the unprivileged user own it.
RUN mkdir -p /app/data && chown node:node /app/data
# Numeric, so Kubernetes can verify runAsNonRoot (the node image's `node` user is 1000:1000).
USER 1000:1000
EXPOSE 3000
CMD ["node", "scripts/run.mjs", "src/main.ts"]
