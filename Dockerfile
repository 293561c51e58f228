# The image of deployer's own services (api, worker, scheduler), as docker-compose.yml
# runs them. No registry is needed: it starts from the base image `make setup` makes,
# and takes the binary and the toolchain from the build context. `make image` builds
# it (the binary first, statically).
ARG BASE_IMAGE=deployer-base:bookworm
FROM ${BASE_IMAGE}
LABEL io.deployer.managed-by=deployer io.deployer.role=service
COPY bin/deployer /usr/local/bin/deployer
COPY .toolchain/bin /opt/deployer/toolchain/bin
COPY .toolchain/solc/node_modules /opt/deployer/toolchain/solc/node_modules
COPY .toolchain/solc/.version /opt/deployer/toolchain/solc/.version
COPY .toolchain/compilers /opt/deployer/toolchain/compilers
COPY network.json /etc/deployer/network.json
ENV TOOLCHAIN_DIR=/opt/deployer/toolchain \
    NETWORKS_FILE=/etc/deployer/network.json \
    FOUNDRY_CACHE_DIR=/var/cache/deployer/foundry \
    COMPILER_STORE_DIR=/var/cache/deployer/compilers \
    PROJECTS_ROOT=/var/empty
WORKDIR /var/lib/deployer
ENTRYPOINT ["/usr/local/bin/deployer"]
CMD ["all"]
