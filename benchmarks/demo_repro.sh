#!/usr/bin/env bash
# `make repro` as a user runs it (issue 32's 8-minute budget): a clean clone of HEAD with its
# own empty DVC cache, so every stage runs, and `dvc repro`, timed, the bare 96 px training
# step measured right before and after it (benchmarks/step_rate.py), so that the wall time
# converts to another machine: seconds × bare img/s / 23.5 = seconds on a machine whose bare
# step runs at 23.5 img/s.
#
#   bash benchmarks/demo_repro.sh
#
# Run it with nothing else running (the venv already built: make venv). It prints each stage's
# seconds, the whole run's, both bare step rates, the conversion, and what `git status` says
# of the committed outputs afterwards (nothing: they came out byte for byte). KEEP=1 keeps the
# clone and its cache (their folder is printed).
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
cd "$repo"
[ -x .venv/bin/python ] || { echo "error: no .venv here: run make venv first" >&2; exit 1; }
work=$(mktemp -d)
clone=$work/repo
git clone -q "$repo" "$clone"
ln -s "$repo/.venv" "$clone/.venv"
cd "$clone"
.venv/bin/dvc cache dir --local "$work/cache"
# step_rate's lines to stderr, the 96 px rate to stdout (not `tee /dev/stderr`: reopening a
# redirected stderr truncates its file).
bare() {
    local out
    out=$(PYTHONPATH=src .venv/bin/python benchmarks/step_rate.py --shapes 96x16 --repeats 3)
    echo "$out" >&2
    awk '/96 px, batch  16:/ {print $5}' <<< "$out"
}
echo "commit $(git rev-parse --short HEAD)"
before=$(bare)
start=$(date +%s.%N)
PATH=$PWD/.venv/bin:$PATH dvc repro 2>&1 |
    while IFS= read -r line; do
        # a progress bar redraws with carriage returns: keep what follows the last one
        printf '%s %s\n' "$(date +%s.%N)" "${line##*$'\r'}"
    done > "$work/repro.log"
end=$(date +%s.%N)
after=$(bare)
# A stage's time: from its "Running stage" line to the next one's (the last: to the end). A
# stage whose inputs came out the same bytes and whose outputs are committed (tsne, evaluate)
# is skipped, as in the user's `make repro`: listed as such.
awk -v end="$end" '/Running stage|didn.t change, skipping/ {
        if (name) printf "  %-12s %6.1f s\n", name, $1 - t
        name = ""
    }
    /Running stage/ {name = $4; t = $1}
    /didn.t change, skipping/ {printf "  %-12s skipped (its inputs the same bytes)\n", $3}
    END {if (name) printf "  %-12s %6.1f s\n", name, end - t}' "$work/repro.log" | tr -d "':"
awk -v s="$start" -v e="$end" -v b="$before" -v a="$after" 'BEGIN {
    seconds = e - s
    printf "dvc repro: %.1f s; bare 96 px step %s img/s before, %s after\n", seconds, b, a
    printf "at 23.5 img/s: %.0f-%.0f s (%.1f-%.1f min)\n", seconds * b / 23.5, seconds * a / 23.5,
        seconds * b / 23.5 / 60, seconds * a / 23.5 / 60
}'
echo "git status after the run (empty: every committed output came out byte for byte):"
git status --short -- dvc.lock metrics plots dvclive
if [ "${KEEP:-0}" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
