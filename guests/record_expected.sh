#!/usr/bin/env bash
# Record each guest's native stdout and exit status (run on this x86-64 host) as the expected output.
set -euo pipefail
cd "$(dirname "$0")"
for bin in bin/*; do
    name=$(basename "$bin")
    set +e
    "$bin" one two < /dev/null > "expected/$name.out"
    echo $? > "expected/$name.status"
    set -e
done
