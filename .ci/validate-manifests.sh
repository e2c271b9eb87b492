#!/usr/bin/env bash
# Renders every example workflow for Kubernetes with the built binary (`testloop render`) and
# validates what it prints against the Kubernetes 1.37 OpenAPI schemas, offline and strict, with
# kubernetes-validate from PyPI: an independent check of the pods and ConfigMaps the executor
# creates (the snapshot tests in orchestrator/tests/manifest.rs pin their exact shape).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=1.37.0
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  "kubernetes-validate>=1.37.0"

cargo build --quiet -p testloop-server
bin=${CARGO_TARGET_DIR:-target}/debug/testloop
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

count=0
for workflow in examples/workflows/*.yaml ../shared/examples/testkube/*.yaml; do
  [ -e "$workflow" ] || continue
  rendered="$out/$(basename "$(dirname "$workflow")")-$(basename "$workflow")"
  # Shared examples may use what testloop does not run yet: those are refused, not rendered.
  if "$bin" render "$workflow" --executor kubernetes --namespace tests >"$rendered" 2>"$rendered.err"; then
    count=$((count + 1))
  else
    rm -f "$rendered"
    case "$workflow" in
      examples/*) cat "$rendered.err" >&2; exit 1 ;;
    esac
  fi
  rm -f "$rendered.err"
done
kubernetes-validate --kubernetes-version "$KUBERNETES_VERSION" --strict --quiet "$out"/*.yaml
echo "validate-manifests: $count rendered workflows valid against Kubernetes $KUBERNETES_VERSION (strict)"
