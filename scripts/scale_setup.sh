#!/usr/bin/env bash
# Engines for the scale-out (mlref.scale, tests/scale, nox -s scale): redis-server from the
# Debian package, nginx (the balancer in front of the server replicas) and a Java 17 runtime
# for Spark, installed with apt when missing; then the Python side (feast[redis], redis,
# pyspark) through the project's `scale` extra. CI (.ci/run) starts with none of them.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
# Debian puts nginx in /usr/sbin, which is not on every user's PATH
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)

if ((${#need_apt[@]})); then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "installing ${need_apt[*]} with apt"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
    # the packages start a system-wide redis on 6379 and nginx on 80 (where an init system
    # runs); the tests start their own on free loopback ports
    for unit in redis-server nginx; do
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
            $SUDO systemctl disable --now "$unit" || true
        fi
    done
fi

redis-server --version
java -version 2>&1 | head -n 1
{ command -v nginx || echo /usr/sbin/nginx; } | { read -r bin; "$bin" -v 2>&1; }
if [ "${SKIP_UV_SYNC:-0}" != "1" ]; then
    uv sync --extra scale
fi
