#!/usr/bin/env bash
# What the test suite needs besides Rust, installed when missing (README, "Try it"; .ci/run):
# - bubblewrap: the Kubernetes API double (tests/kube-double) runs each container in a bubblewrap
#   view where the pod's volumes appear at their mount paths; the local executor uses it too when
#   not root;
# - pytest: the example project (examples/workflows/calc.yaml) is tested with it.
set -euo pipefail

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
    command -v bwrap >/dev/null 2>&1 || {
      echo "prerequisites: bubblewrap was installed but bwrap is not on PATH" >&2
      exit 1
    }
  else
    echo "prerequisites: bubblewrap is missing; install it as root (apt-get install bubblewrap), then run again" >&2
    exit 1
  fi
fi

if ! python3 -m pytest --version >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check pytest
fi
