#!/bin/sh
# Render every language x service type of every template set (the built-in one and each
# folder under examples/template-sets/, or the folders given as arguments), run the App's own
# validators on each (--check: Kubernetes schemas, workflow schema, zizmor), then checkov
# (Kubernetes objects, Dockerfiles, GitHub workflows) on the result, offline. checkov lives
# in its own virtualenv because it pins many packages. Exits non-zero on any failed check;
# skipped checks and why are listed in tools/CHECKOV_SKIPS.md.
set -eu
cd "$(dirname "$0")/.."

PY=${PY:-python3}
APP_PY=${APP_PY:-.venv/bin/python}
VENV=.venv-checkov
CHECKOV_VERSION=3.3.30

if [ ! -x "$VENV/bin/checkov" ]; then
  echo "creating $VENV with checkov $CHECKOV_VERSION (once)"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
if [ "$#" -eq 0 ]; then
  set -- examples/template-sets/*/
fi
SETS=""
for set_dir in "$@"; do
  SETS="$SETS --set $set_dir"
done
# shellcheck disable=SC2086 # one word per set folder
"$APP_PY" -m tools.render_all --all "$OUT/repo" --check $SETS

SKIPS=$(sed -n 's/^| *\(CKV[A-Z0-9_]*\) *|.*/\1/p' tools/CHECKOV_SKIPS.md | paste -sd, -)
echo "checkov: skipping $SKIPS (see tools/CHECKOV_SKIPS.md)"

# cli for people, json to prove every framework found something: checkov silently ignores
# a workflow it cannot parse with its own schema, and "0 failed" must not mean "0 checked".
status=0
"$VENV/bin/checkov" -d "$OUT/repo" --framework kubernetes dockerfile github_actions \
  --skip-download --quiet --compact --skip-check "$SKIPS" \
  --output cli --output json --output-file-path "console,$OUT/checkov.json" || status=$?

"$APP_PY" - "$OUT/checkov.json" <<'PY' || status=1
import json, sys

reports = json.load(open(sys.argv[1]))
reports = reports if isinstance(reports, list) else [reports]
found = {r["check_type"]: r["summary"] for r in reports}
for framework in ("kubernetes", "dockerfile", "github_actions"):
    summary = found.get(framework)
    if not summary or summary["passed"] + summary["failed"] == 0:
        sys.exit(f"checkov checked nothing for {framework}: the generated files were not parsed")
    print(f"{framework}: {summary['passed']} passed, {summary['failed']} failed, "
          f"{summary['resource_count']} resources")
PY

if command -v kubectl >/dev/null 2>&1; then
  mkdir -p "$OUT/built"
  for overlay in "$OUT"/repo/services/*/k8s/overlays/*; do
    env=$(basename "$overlay")
    svc=$(basename "$(dirname "$(dirname "$(dirname "$overlay")")")")
    kubectl kustomize "$overlay" > "$OUT/built/$svc-$env.yaml"
  done
  echo "checkov: CKV_K8S_21 on the built overlays"
  "$VENV/bin/checkov" -d "$OUT/built" --framework kubernetes --check CKV_K8S_21 \
    --skip-download --quiet --compact || status=$?
else
  echo "kubectl not found: overlays not built, CKV_K8S_21 checked nowhere"
fi

# The App's own deployment passes the same checker (skips are annotated on the objects and
# explained in deploy/CHECKOV_SKIPS.md).
echo "checkov: the App's own deploy/ and Dockerfile"
"$VENV/bin/checkov" -d deploy --framework kubernetes kustomize \
  --skip-download --quiet --compact || status=$?
"$VENV/bin/checkov" -f Dockerfile --framework dockerfile \
  --skip-download --quiet --compact || status=$?

exit "$status"
