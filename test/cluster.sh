#!/usr/bin/env bash
# test/cluster.sh run CMD [ARG...]
#   Makes a throwaway cluster (fresh temporary folder, free port, socket in
#   that folder, utilix preloaded, a freshly generated master key), runs CMD
#   with PGHOST/PGPORT/PGUSER set, then stops and removes the cluster, also
#   when CMD fails or the run is interrupted.  Exits with CMD's status.
# test/cluster.sh start
#   Same set-up, but leaves the cluster running and prints its settings.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

mode=${1:-}
shift || true
dir=$(mktemp -d /tmp/utilix-cluster.XXXXXX)
cluster_init "$dir"

case "$mode" in
run)
    trap 'cluster_destroy' EXIT
    trap 'exit 130' INT TERM
    cluster_start
    set +e
    "$@"
    status=$?
    set -e
    exit $status
    ;;
start)
    cluster_start
    echo "export UTILIX_DIR=$UTILIX_DIR PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER"
    ;;
*)
    echo "usage: $0 run CMD [ARG...] | start" >&2
    rm -rf "$dir"
    exit 2
    ;;
esac
