#!/usr/bin/env bash
# Runs every suite on one throwaway cluster (scripted tests that need their
# own server make their own) and ends with one line: N passed, N failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/cluster.sh" run "$here/suites.sh"
