# certkeeper in a container: build with the Rust toolchain, run on a slim Debian as a
# non-root user. The data directory (database, master key, admin token, CA certificates) is
# a volume; keep a copy of the master key outside it (README, "Operating certkeeper").
#   docker build -t certkeeper .
#   docker run -p 8443:8443 -p 8080:8080 -p 8444:8444 -v certkeeper-data:/var/lib/certkeeper certkeeper
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin certkeeper

FROM debian:bookworm-slim
# curl serves the health check; ca-certificates the outbound TLS (cloud destinations, webhooks).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/certkeeper --create-home certkeeper
COPY --from=build /src/target/release/certkeeper /usr/local/bin/certkeeper
USER 10001:10001
ENV CERTKEEPER_DATA_DIR=/var/lib/certkeeper \
    CERTKEEPER_SERVER__HTTPS_LISTEN=0.0.0.0:8443 \
    CERTKEEPER_SERVER__HTTP_LISTEN=0.0.0.0:8080 \
    CERTKEEPER_EST__MTLS_LISTEN=0.0.0.0:8444
VOLUME ["/var/lib/certkeeper"]
EXPOSE 8443 8080 8444
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["certkeeper"]
CMD ["serve"]
