#!/usr/bin/env bash
# testloop's engine benchmarks, each compared side by side with the plain-shell equivalent in the
# same run (ratios, because these machines are noisy). Results go to stdout as Markdown rows for
# BENCHMARKS.md.
#
#   bash bench/run.sh            # all
#   bash bench/run.sh steps      # (a) 200 steps of `true` vs the same 200 processes from a shell loop
#   bash bench/run.sh output     # (b) a step printing 1 GB vs `cmd > file`
#   bash bench/run.sh tail       # (c) tail of the last 100 lines of 1 MB, 100 MB and 1 GB logs
#   bash bench/run.sh results    # (d) normalised diff of two 200,000-line logs vs `diff -u`,
#                                # (e) JUnit parse of a 50 MB report, (f) scan of a 50 MB log,
#                                # (g) get_execution's size on a failure in a 50 MB log
#   bash bench/run.sh kube       # (h) the Kubernetes executor against the API double: requests per
#                                # unit, and 100 single-step units created and run at once
#
# Needs hyperfine (apt-get install hyperfine). BENCH_OUTPUT_BYTES shrinks (b) for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
if [[ $which != results && $which != tail && $which != kube ]]; then
  command -v hyperfine >/dev/null || { echo "install hyperfine first (apt-get install hyperfine)" >&2; exit 1; }
fi
cargo build --release -q -p testloop-server
# Cargo builds into CARGO_TARGET_DIR when it is set (worktrees sharing a machine each have one).
target=${CARGO_TARGET_DIR:-$PWD/target}
bin=$target/release/testloop
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A data directory that lives on between runs, as a user's does. A brand-new directory on this
# machine's ext4 makes every file creation several times slower until its block group is warm
# (measured: 400 empty files take 85 ms in a new directory, 15 ms in a used one), which would
# measure the disk's first touch rather than testloop.
export TESTLOOP_HOME=${BENCH_HOME:-$target/bench-home}
mkdir -p "$TESTLOOP_HOME"

median() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; print(' '.join(str(x['median']) for x in r))" "$1"; }

if [[ $which == all || $which == steps ]]; then
  {
    printf 'apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: bench-200-steps\nspec:\n  steps:\n'
    for _ in $(seq 200); do printf '  - shell: "true"\n'; done
  } > "$work/steps.yaml"
  "$bin" run "$work/steps.yaml" >/dev/null
  # The same processes testloop starts for a `shell: "true"` step: /bin/sh -c 'set -e; true'.
  # Runs alternate (A, B, A, B…) and the ratio is the median of the per-pair ratios, so that drifts
  # of this shared machine stay out of it.
  read -r ours theirs ratio low high < <(python3 bench/paired.py --pairs 30 --warmup 3 -- \
    "$bin" run bench-200-steps -- "/bin/sh -c 'for i in \$(seq 200); do /bin/sh -c \"set -e; true\"; done'")
  echo "| (a) 200 steps of true | testloop $ours ms | shell loop $theirs ms | median paired ratio $ratio (range $low-$high; goal <= 1.2) |"
fi

if [[ $which == all || $which == output ]]; then
  bytes=${BENCH_OUTPUT_BYTES:-1000000000}
  # 100-byte lines (99 characters and a newline), as fast as `yes` can print them.
  line=$(printf 'x%.0s' $(seq 99))
  cat > "$work/output.yaml" <<YAML
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: bench-output
spec:
  steps:
  - shell: yes $line | head -c $bytes
YAML
  "$bin" run "$work/output.yaml" >/dev/null
  # Both write a new file each run: removing the previous output (outside the timing) keeps the
  # cost of truncating a large file out of either side.
  hyperfine -N --warmup 1 --runs 5 --export-json "$work/output.json" \
    --prepare "/bin/sh -c 'rm -rf $TESTLOOP_HOME/logs/* $work/plain.out; sync'" \
    -n 'testloop run (1 step printing)' "$bin run bench-output" \
    -n 'cmd > file' "/bin/sh -c 'yes $line | head -c $bytes > $work/plain.out'" >&2
  read -r ours theirs < <(median "$work/output.json")
  python3 -c "import sys; o,t,b=map(float,sys.argv[1:]); print(f'| (b) step printing {b/1e9:g} GB | testloop {b/o/1e6:.0f} MB/s | cmd > file {b/t/1e6:.0f} MB/s | throughput ratio {t/o:.2f} (goal >= 0.7) |')" "$ours" "$theirs" "$bytes"
fi

if [[ $which == all || $which == tail ]]; then
  cargo bench -q -p testloop-orchestrator --bench log_tail
fi

if [[ $which == all || $which == results ]]; then
  cargo bench -q -p testloop-orchestrator --bench log_diff
  cargo bench -q -p testloop-orchestrator --bench junit_parse
  cargo bench -q -p testloop-orchestrator --bench log_scan
  cargo test -q -p testloop-tools --test mcp_results get_execution_names -- --nocapture 2>&1 |
    grep 'get_execution on'
fi

if [[ $which == all || $which == kube ]]; then
  # The pods' runner is the release binary just built, stripped as the Dockerfile's image is (25 MB
  # rather than 190 MB with the line tables the release profile keeps): every pod's init container
  # copies it, and 100 copies of the unstripped one would measure this disk, not testloop.
  strip -o "$work/testloop-runner" "$bin"
  TESTLOOP_BIN=$work/testloop-runner cargo bench -q -p testloop-tests --bench kube_units
fi
