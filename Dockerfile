# Threshold API and worker image. TypeScript runs directly with tsx (a runtime dependency).
FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production

# Dependencies first, so source changes reuse this layer.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# Only what the processes run (no local node_modules, .env or data are copied).
COPY tsconfig.json ./
COPY src ./src
COPY machines ./machines
COPY workers ./workers
COPY scripts ./scripts
COPY db ./db

# DATA_DIR (./data) is only written in the embedded mode; let the unprivileged user own it.
RUN mkdir -p /app/data && chown node:node /app/data

USER node
EXPOSE 3000
CMD ["npm", "start"]
