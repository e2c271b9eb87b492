#!/usr/bin/env bash
# Validates every manifest in deploy/ against the Kubernetes 1.37 OpenAPI schemas, offline and
# strict (an unknown field is an error), with kubernetes-validate from PyPI: an independent check of
# what tests/tests/deploy.rs reads with k8s-openapi. kustomization.yaml is kustomize's, not the
# API server's, and is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=1.37.0

# A no-op (and no download) when a version that bundles the 1.37 schemas is installed.
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  "kubernetes-validate>=1.37.0"

files=()
for file in deploy/*.yaml deploy/*.yml; do
  [ -e "$file" ] || continue
  [ "$(basename "$file")" = kustomization.yaml ] && continue
  files+=("$file")
done
if [ ${#files[@]} -eq 0 ]; then
  echo "validate-deploy: no manifests in deploy/" >&2
  exit 1
fi

kubernetes-validate --kubernetes-version "$KUBERNETES_VERSION" --strict --quiet "${files[@]}"
echo "validate-deploy: ${#files[@]} files valid against Kubernetes $KUBERNETES_VERSION (strict)"
