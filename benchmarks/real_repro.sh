#!/usr/bin/env bash
# One real category's whole `dvc repro --no-run-cache` with a survey setting's params (issue
# 31's budget), from a clean clone of HEAD, the bare 96 px step measured right before and after
# it (benchmarks/step_rate.py, in this checkout's demo params), so the wall time converts to
# another machine: seconds × bare img/s / 23.5 = seconds on a 23.5 img/s machine.
#
#   bash benchmarks/real_repro.sh [category screw] [setting real] [seed 1] [epochs 100]
#
# Run it with nothing else running. It prints the stage start times, the seconds, both bare
# step rates, and whether the four metrics files equal the committed survey cell's, if any
# (surveys/real/<category>/<setting>/seed<seed>-<epochs>ep.json).
set -euo pipefail
category=${1:-screw} setting=${2:-real} seed=${3:-1} epochs=${4:-100}
repo=$(git rev-parse --show-toplevel)
cd "$repo"
[ -x .venv/bin/python ] || { echo "error: no .venv here: run make venv first" >&2; exit 1; }
clone=$(mktemp -d)/repo
git clone -q "$repo" "$clone"
ln -s "$repo/.venv" "$clone/.venv"
(cd "$clone" && .venv/bin/dvc cache dir --local "$repo/.dvc/cache")
bare() { PYTHONPATH=src .venv/bin/python benchmarks/step_rate.py --shapes 96x16 --repeats 3; }
# The cell's params as scripts/survey.py writes them (its data overrides and their check).
(cd "$clone/scripts" && PYTHONPATH=../src ../.venv/bin/python -c "
import yaml
from survey import data_overrides
from survey_settings import cell_params
from metricad.errors import run_stage

def write_params():
    data = data_overrides('$category', '$repo/../shared/realdata')
    base = yaml.safe_load(open('../params.yaml'))
    params = cell_params(base, '$setting', $seed, $epochs, data)
    yaml.safe_dump(params, open('../params.yaml', 'w'), sort_keys=False)

run_stage(write_params)
") || { rm -rf "$(dirname "$clone")"; exit 1; }
echo "commit $(git -C "$clone" rev-parse --short HEAD), $category $setting seed $seed, $epochs epochs"
bare
start=$(date +%s)
(cd "$clone" && PATH=$PWD/.venv/bin:$PATH dvc repro --no-run-cache 2>&1 |
    while IFS= read -r line; do
        # a progress bar redraws with carriage returns: keep what follows the last one
        printf '%s %s\n' "$(date +%T)" "${line##*$'\r'}"
    done > repro.log)
echo "dvc repro: $(( $(date +%s) - start )) s"
grep -E "Running stage" "$clone/repro.log"
bare
cell="surveys/real/$category/$setting/seed$seed-${epochs}ep.json"
[ -f "$cell" ] && (cd "$clone" && .venv/bin/python -c "
import json
cell = json.load(open('$repo/$cell'))
for name, expected in cell['metrics'].items():
    print(name, 'the committed cell\'s' if json.load(open(name)) == expected else 'DIFFERS')
")
echo "clone kept in $clone"
