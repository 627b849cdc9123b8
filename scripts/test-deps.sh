#!/usr/bin/env bash
# System packages the tests need and pip cannot give: a Docker engine (the sweeper, the
# consumers image and the Docker test environment of scripts/docker_env.py run on a real
# one), a static busybox (the tiny images the sweeper sweeps), debootstrap (the Debian
# root filesystems of the images built there), Java 17 with Maven (Apache Kafka runs
# from Maven Central's jars), and Prometheus with its promtool (the alert rules' tests
# and the scrape test).
# Installed once, as root, from Debian's packages; a no-op when already there.
set -euo pipefail
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || missing+=(busybox-static)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "test-deps: ${missing[*]} missing; install them as root (apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "test-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
