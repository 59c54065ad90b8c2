# Tether: build with the dev dependencies, run with production ones only, as a non-root user.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY *.ts ./
COPY bin ./bin
COPY managers ./managers
COPY plugins ./plugins
COPY protocol ./protocol
COPY routes ./routes
COPY sessions ./sessions
RUN npm run build && npm prune --omit=dev

FROM node:20-slim
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
ENV HOST=0.0.0.0 PORT=8002
EXPOSE 8002
# The image's unprivileged `node` user; the app writes nothing to disk.
USER node
# Node itself as PID 1 so SIGTERM reaches close-with-grace and sessions drain (close 1001).
CMD ["node", "dist/server.js"]
