#!/usr/bin/env bash
# Install Java 17 for RAPPORT_ENGINE=spark (pyspark starts a JVM): Debian's openjdk-17-jre-headless.
# Idempotent: nothing happens when a Java 17 or newer is already on PATH (or in JAVA_HOME).
# Prints the java binary's path on stdout; progress goes to stderr. Exit 1 when it cannot install.
set -euo pipefail

find_java() {
    local cand
    for cand in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java 2>/dev/null || true)"; do
        [ -n "$cand" ] && [ -x "$cand" ] || continue
        # `java -version` prints e.g. `openjdk version "17.0.15" 2025-04-15` (on stderr)
        major=$("$cand" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
        if [ -n "$major" ] && [ "$major" -ge 17 ]; then
            echo "$cand"
            return 0
        fi
    done
    return 0
}

if [ -z "$(find_java)" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install_java.sh: no Java 17 and apt-get is not available; install a Java 17 runtime yourself" >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "install_java.sh: no Java 17; not root and no sudo (run as root)" >&2
            exit 1
        fi
        SUDO="sudo"
    fi
    echo "install_java.sh: installing openjdk-17-jre-headless with apt-get" >&2
    # The package index may be stale or absent in a fresh container: refresh it first.
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        openjdk-17-jre-headless >&2
fi

path=$(find_java)
if [ -z "$path" ]; then
    echo "install_java.sh: Java 17 is still not on PATH" >&2
    exit 1
fi
echo "$path"
