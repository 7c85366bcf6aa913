#!/bin/bash
# Like the official image: variables named like settings (lower case, with a dot) become
# -E options, e.g. discovery.type=single-node, xpack.security.enabled=false.
set -euo pipefail
options=()
while IFS='=' read -r -d '' name value; do
  if [[ "$name" =~ ^[a-z0-9_]+\.[a-z0-9_.]+$ ]]; then
    options+=(-E "$name=$value")
  fi
done < <(env -0)
exec elasticsearch "${options[@]}" "$@"
