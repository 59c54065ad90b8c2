# Tether: build with the dev dependencies, run with production ones only, as a non-root user.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
# Everything .dockerignore lets through: sources, tsconfigs and any static assets.
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-slim
WORKDIR /app
COPY --from=build /app ./
ENV HOST=0.0.0.0 PORT=8002
EXPOSE 8002
# The image's unprivileged `node` user; the app writes nothing to disk.
USER node
# Node itself as PID 1 so SIGTERM reaches close-with-grace and sessions drain (close 1001).
CMD ["node", "dist/server.js"]
