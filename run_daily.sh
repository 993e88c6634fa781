#!/usr/bin/env bash
# The nightly run: one lock, a dated log, steps in order, stop at the first failure.
#
#   ./run_daily.sh [--config PATH] [--as-of YYYY-MM-DD] [--from STEP] [--demo [--demo-days N]] [--set K=V [--publish]]
#
# cron (02:00 every night):
#   0 2 * * *  cd /opt/wfm-forecast && ./run_daily.sh --config config.yaml >> logs/cron.log 2>&1
# Exit code: 0 when every step succeeded, else the failing step's code (2 = bad input/config, 1 = other).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

config="${WFM_CONFIG:-config.yaml}"
as_of=""
from_step="0"
demo=0
demo_days=730
extra=()
publish=()
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --as-of) as_of="$2"; shift 2 ;;
    --from) from_step="$2"; shift 2 ;;
    --demo) demo=1; shift ;;
    --demo-days) demo_days="$2"; shift 2 ;;
    --set) extra+=(--set "$2"); shift 2 ;;
    --publish) publish=(--publish); shift ;;
    -h|--help) usage; cat <<'EOT'

Steps: 0 load bronze, 1 build silver, 1_5 segment customers, 2 train, 3 forecast, 4 evaluate, 5 report.
  --config PATH     config file (default: env WFM_CONFIG, else config.yaml)
  --as-of DATE      the run's date (default: today in the configured timezone)
  --from STEP       resume at STEP (0, 1, 1_5, 2, 3, 4, 5), e.g. after fixing a failed step
  --demo            generate the synthetic demo data (deterministic) into data/inbox first
  --demo-days N     days of demo history (default 730)
  --set KEY=VALUE   override a config key for every step (repeatable). Steps 2 and 3 then run as a what-if:
                    the model is registered as staging, never promoted, and the forecast and staffing go to
                    <report.output_dir>/<as-of>/whatif-<run_id>/, not to gold (keys of database.*, source.*,
                    report.* and training.model_dir only say where things are and do not count)
  --publish         with --set: steps 2 and 3 publish as usual (promote, replace the as-of's forecast)
A second run while one is going is refused (lock: data/.run_daily.lock). Logs: logs/run_daily_<as-of>_<time>.log
EOT
      exit 0 ;;
    *) echo "run_daily.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# --- environment: a virtual environment with the pinned requirements, created on first use ---------------
python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "run_daily.sh: creating .venv and installing requirements (first run only)..." >&2
  "$python_bin" -m venv .venv
fi
req_hash="$(sha256sum requirements.txt | cut -c1-64)"
if [ "$(cat .venv/.requirements.sha256 2>/dev/null || true)" != "$req_hash" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$req_hash" > .venv/.requirements.sha256
fi
py=.venv/bin/python

# Logs, the lock and everything the steps create are the owner's only (the steps set this umask themselves too);
# WFM_UMASK=027 lets the group read them (see README "Databases").
case "${WFM_UMASK:-077}" in 077|027|007) umask "${WFM_UMASK:-077}" ;; *) echo "run_daily.sh: WFM_UMASK=$WFM_UMASK: use 077 or 027" >&2; exit 2 ;; esac

# --- one run at a time: flock is released by the kernel when the holder dies, so a killed run never blocks ---
mkdir -p data logs
exec 9>data/.run_daily.lock
if ! flock -n 9; then
  echo "run_daily.sh: another run is in progress (lock data/.run_daily.lock held by pid $(cat data/.run_daily.pid 2>/dev/null || echo '?')); not starting a second one" >&2
  exit 3
fi
echo $$ > data/.run_daily.pid

if [ -z "$as_of" ]; then
  as_of="$("$py" -c 'import sys; from common.config import load_config; from common.cli import today_in; print(today_in(load_config(sys.argv[1]).timezone))' "$config")"
fi
log="logs/run_daily_${as_of}_$(date +%H%M%S).log"
exec > >(tee -a "$log") 2> >(tee -a "$log" >&2)
echo "run_daily.sh: as_of=$as_of config=$config from=$from_step log=$log"

if [ "$demo" = 1 ]; then
  "$py" -m common.demo --config "$config" --as-of "$as_of" --days "$demo_days"
fi

steps=(0:0_load_bronze.py 1:1_build_silver.py 1_5:1_5_segment_customers.py 2:2_train.py 3:3_forecast.py 4:4_evaluate.py 5:5_report.py)
started=0
for entry in "${steps[@]}"; do
  id="${entry%%:*}"; script="${entry#*:}"
  [ "$id" = "$from_step" ] && started=1
  [ "$started" = 1 ] || { echo "run_daily.sh: skipping step $id ($script): --from $from_step"; continue; }
  echo "run_daily.sh: step $id: $script"
  set +e
  step_args=("${extra[@]}")
  case "$id" in 2|3) step_args+=("${publish[@]}") ;; esac  # --publish is a flag of steps 2 and 3 only
  "$py" "$script" --config "$config" --as-of "$as_of" "${step_args[@]}"
  rc=$?
  set -e
  if [ $rc -ne 0 ]; then
    echo "run_daily.sh: FAILED at step $id ($script) with exit code $rc; fix it and resume with: ./run_daily.sh --as-of $as_of --from $id" >&2
    # The alert mail (or .eml under output/failures/ without SMTP) must never replace the step's own exit code.
    "$py" -m common.mail --config "$config" --failure --subject "wfm-forecast FAILED at step $id for $as_of (exit $rc)" \
      --log-file "$log" || true
    exit $rc
  fi
done
if [ "$started" = 0 ]; then
  echo "run_daily.sh: --from $from_step is not a step (${steps[*]%%:*})" >&2
  exit 2
fi
echo "run_daily.sh: all steps succeeded for $as_of"
