# syntax=docker/dockerfile:1
#
# testloop's image: one static binary at /testloop on an empty base, running as 65532:65532.
#
#   docker build -t ghcr.io/testloop/testloop:0.1.0 .
#   docker run --rm -p 8080:8080 -e TESTLOOP_TOKEN=$(openssl rand -hex 32) ghcr.io/testloop/testloop:0.1.0
#
# The same image is the Kubernetes executor's toolkit image (--toolkit-image): the init container
# of every test pod runs /testloop from it to copy the binary into the pod, whatever the step
# images are. That is why the binary is static (musl: no libc, no loader needed, runs in any image)
# and sits at exactly /testloop.
#
# Needs BuildKit (the default builder since Docker 23) for the cache mount of the build stage.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- planner: the workspace's shape without its code. Every Cargo.toml and Cargo.lock, and an empty
# file in place of every .rs file (cargo refuses a manifest whose targets are missing, and the
# orchestrator names its tests and benches explicitly). The next stage copies only this, so its
# dependency layer is rebuilt only when a manifest, the lock file or the set of source files changes.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS planner
WORKDIR /src
COPY . .
RUN mkdir /skeleton \
 && find . \( -name Cargo.toml -o -name Cargo.lock \) -not -path './target/*' \
        -exec cp --parents {} /skeleton/ \; \
 && find . -name '*.rs' -not -path './target/*' \
        -exec sh -c 'for f; do mkdir -p "/skeleton/${f%/*}" && : > "/skeleton/$f"; done' sh {} +

# --- build: a static x86_64 musl binary.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# musl-tools: the musl C compiler (x86_64-linux-musl-gcc). rusqlite is `bundled` (SQLite is
# compiled from C) and kube's rustls uses `ring` (C and assembly), so both need a C compiler for
# the musl target; cc-rs finds it by that name. Not pinned to a version (DL3008): it only builds,
# never reaches the image, and the Debian release is pinned by the base image's tag.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
# Every dependency's source, in a layer of its own (kept in registry caches such as
# `--cache-to type=registry`): a code change rebuilds from the COPY below, without downloading.
COPY --from=planner /skeleton/ ./
RUN cargo fetch --locked
COPY . .
# --offline: everything was fetched above, with the versions of Cargo.lock (--locked).
# The image gets no debug info and no symbols (the workspace's release profile keeps line tables
# for profiling): about 15 MB instead of over 100.
# The target directory is a cache mount, so that local rebuilds recompile only testloop's crates;
# their sources are touched first because COPY may keep timestamps older than the cached build.
RUN --mount=type=cache,target=/src/target,sharing=locked \
    find . -name '*.rs' -not -path './target/*' -exec touch {} + \
 && CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --offline --target x86_64-unknown-linux-musl --bin testloop \
 && mkdir -p /rootfs \
 && cp target/x86_64-unknown-linux-musl/release/testloop /rootfs/testloop
# The rest of the final filesystem: CA certificates (for HTTPS to anything that is not the API
# server, whose CA comes with the ServiceAccount), a passwd/group entry for 65532 so that the user
# has a name, a world-writable sticky /tmp, and the default data directory owned by 65532 (a
# `docker run -v NAME:/var/lib/testloop` volume starts from it; on Kubernetes the PVC's fsGroup does
# that). COPY --from keeps owners and modes of what it copies.
RUN /rootfs/testloop --version \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/var/lib/testloop \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'nonroot:x:65532:65532:nonroot:/var/lib/testloop:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'nonroot:x:65532:' > /rootfs/etc/group \
 && chmod 0755 /rootfs/testloop \
 && chmod 1777 /rootfs/tmp \
 && chown 65532:65532 /rootfs/var/lib/testloop \
 && chmod 0700 /rootfs/var/lib/testloop

# --- the image: nothing but the above. No shell, no package manager, nothing to exec into.
FROM scratch
COPY --from=build /rootfs/ /
ENV TESTLOOP_HOME=/var/lib/testloop \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Numeric, so that Kubernetes can check runAsNonRoot without a passwd lookup.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/testloop"]
# Listening beyond loopback needs TESTLOOP_TOKEN: without it testloop refuses to start, and says so.
CMD ["serve", "--transport", "http", "--listen", "0.0.0.0:8080"]

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="testloop" \
      org.opencontainers.image.description="MCP server that runs test workflows (Testkube TestWorkflow YAML) locally or as Kubernetes pods, and keeps their logs and results" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/testloop" \
      org.opencontainers.image.base.name="scratch"
