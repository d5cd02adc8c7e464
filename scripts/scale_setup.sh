#!/usr/bin/env bash
# Engines for the scale-out (mlref.scale, tests/scale, nox -s scale): redis-server from the
# Debian package and a Java 17 runtime for Spark, installed with apt when missing; then the
# Python side (feast[redis], redis, pyspark) through the project's `scale` extra.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)

if ((${#need_apt[@]})); then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "installing ${need_apt[*]} with apt"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
    # the package starts a system-wide redis on 6379; the tests start their own on a free port
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
        $SUDO systemctl disable --now redis-server || true
    fi
fi

redis-server --version
java -version 2>&1 | head -n 1
if [ "${SKIP_UV_SYNC:-0}" != "1" ]; then
    uv sync --extra scale
fi
