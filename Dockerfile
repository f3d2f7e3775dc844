# airlock container image: docker build -t airlock . && docker run -p 5000:5000 -v airlock-data:/var/lib/airlock airlock
# Config at /etc/airlock/mirror.yml (mount your own over it); store at /var/lib/airlock.

FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:22-bookworm-slim
ENV NODE_ENV=production UV_THREADPOOL_SIZE=16
WORKDIR /opt/airlock
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY mirror.yml /etc/airlock/mirror.yml
# The bundled mirror.yml keeps its store in ./data; in the image it lives on the volume.
RUN sed -i 's#^  root: ./data#  root: /var/lib/airlock#' /etc/airlock/mirror.yml \
 && mkdir -p /var/lib/airlock && chown node:node /var/lib/airlock
USER node
VOLUME ["/var/lib/airlock"]
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:5000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--max-semi-space-size=4", "--initial-old-space-size=64", "--liftoff-only", "--no-concurrent-recompilation", "/opt/airlock/dist/cli/main.js"]
CMD ["serve", "--config", "/etc/airlock/mirror.yml"]
