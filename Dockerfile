# syntax=docker/dockerfile:1
#
# One image for every csp service: `csp serve gateway|session-pool|policy|plugins`
# and `csp mock-llm` (docker-compose.yml picks the command per container).
#
#   docker build -t csp .
#
# Needs BuildKit (the default builder of Docker 23+ and `docker compose`): the
# cargo registry and target directory live in cache mounts, so a source change
# recompiles only the workspace crates, not every dependency (the usual
# copy-the-manifests-then-`cargo fetch` layering would need every member's
# Cargo.toml copied one by one and dummy sources for ~20 crates).
#
# Node comes from the official node image rather than Debian's nodejs: bookworm
# ships Node 18, below what the pinned Claude Code CLI (>= 22) and the example
# plugin's MCP server (>= 20) declare. The runtime is still Debian bookworm-slim.

ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUST_IMAGE=rust:1.95-bookworm

# --- 1. the web app: web/dist ------------------------------------------------
FROM ${NODE_IMAGE} AS web
WORKDIR /src/web
# Lockfile first: the npm ci layer is reused until a dependency changes.
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build && test -f dist/index.html

# --- 2. the csp binary ---------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
# rust-toolchain.toml pins 1.95.0 with rustfmt and clippy; installing what the
# image lacks here keeps it in a cached layer of its own.
COPY rust-toolchain.toml ./
RUN cargo --version
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY services services
COPY tests/e2e tests/e2e
COPY proto proto
COPY migrations migrations
# crates/manifest embeds the plugin manifest schema.
COPY docs/plugin.schema.json docs/plugin.schema.json
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p csp-cli \
    && install -m 0755 target/release/csp /usr/local/bin/csp

# --- 3. runtime ----------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini is PID 1 (signals reach csp, which drains and reaps its own subtree as a
# child subreaper); curl serves the compose health checks; git is used by the
# Claude Code CLI's tools in a session's working directory; bubblewrap and
# socat confine every agent (docs/operations.md#agent-sandbox). Versions are not
# pinned: bookworm's archive drops superseded ones, which would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        bubblewrap ca-certificates curl git socat tini \
    && rm -rf /var/lib/apt/lists/*

# Non-root: the agents run arbitrary tools, so never as root. The data dir is
# created here, owned by csp, so a fresh named volume mounted on it inherits
# that ownership.
RUN groupadd --system --gid 10001 csp \
    && useradd --system --uid 10001 --gid csp --home-dir /var/lib/csp \
        --shell /usr/sbin/nologin csp \
    && install -d -o csp -g csp -m 0750 /var/lib/csp

# The pinned Claude Code CLI, exactly as tools/claude-cli/package-lock.json
# says. Installed in one layer so the native binary the postinstall step puts
# in place stays a single copy.
WORKDIR /opt/csp/tools/claude-cli
COPY tools/claude-cli/package.json tools/claude-cli/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error \
    && npm cache clean --force \
    && ./node_modules/.bin/claude --version

# The example plugin with its MCP server installed: the default plugins dir
# when none is mounted.
COPY examples/plugins /opt/csp/plugins
WORKDIR /opt/csp/plugins/everything
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error \
    && npm cache clean --force

COPY --from=web /src/web/dist /opt/csp/web/dist
COPY --from=build /usr/local/bin/csp /usr/local/bin/csp

ENV CSP_WEB_DIR=/opt/csp/web/dist \
    CLAUDE_CLI=/opt/csp/tools/claude-cli/node_modules/.bin/claude \
    CSP_DATA_DIR=/var/lib/csp \
    CSP_PLUGINS_DIR=/opt/csp/plugins

# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/csp
# gateway HTTP; session-pool, policy, plugins, tickets gRPC; their metrics/probes
# (and the tickets worker's); mock-llm; mock-ticketing
EXPOSE 8080 50051 50052 50053 50054 9091 9092 9093 9094 9095 4010 8090
ENTRYPOINT ["tini", "--", "csp"]
CMD ["--help"]
