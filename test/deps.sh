#!/usr/bin/env bash
# Installs the Debian packages that building, testing, the demo and the
# benchmarks need, when any is missing.  Root runs apt-get itself; another
# user needs sudo.
set -euo pipefail
pkgs=(postgresql-15 postgresql-server-dev-15 libssl-dev
      postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl pgbouncer
      postgresql-15-pgaudit make gcc libasan8 libubsan1 mount
      clang libclang-rt-dev)   # clang, libFuzzer: test/fuzz/run.sh (make fuzz)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "utilix: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
