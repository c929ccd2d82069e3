# The image deploy/ runs (a static build is not needed: distroless/cc has the C library and
# nothing else; no shell, no package manager, non-root).
#
#   docker build -t REGISTRY/jackstop:TAG . && docker push REGISTRY/jackstop:TAG
#   (cd deploy/webhook && kustomize edit set image jackstop:local=REGISTRY/jackstop:TAG)
#
# The dist profile (fat LTO) as in the webhook's benchmark. Not built on the project's own
# machines (they have no container engine); the same cargo command is what CI builds with.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --profile dist -p jackstop --bin jackstop \
 && strip target/dist/jackstop

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/dist/jackstop /usr/local/bin/jackstop
# deploy/webhook/deployment.yaml runs it as this user, with a read-only root filesystem.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/jackstop"]
