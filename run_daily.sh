#!/usr/bin/env bash
# The nightly run: one lock, a dated log, steps in order, stop at the first failure. Options: ./run_daily.sh --help
#
# cron (02:00 every night):
#   0 2 * * *  cd /opt/wfm-forecast && ./run_daily.sh --config config.yaml >> logs/cron.log 2>&1
# Exit code: 0 when every step succeeded, else the failing step's code (2 = bad input/config, 1 = other, 3 = locked).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

config="${WFM_CONFIG:-config.yaml}"
as_of=""
from_step="0"
demo=0
demo_days=730
demo_nights=1
extra=()
publish=()
then_rest=""  # a replay's failure message also says how to run the nights after the failed one
usage() { cat <<'EOT'
The nightly run: one lock, a dated log, steps in order, stop at the first failure.

  ./run_daily.sh [--config PATH] [--as-of YYYY-MM-DD] [--from STEP]
                 [--demo [--demo-days N] [--demo-nights N]] [--set KEY=VALUE ... [--publish]]

Steps: 0 load bronze, 1 build silver, 1_5 segment customers, 2 train, 3 forecast, 4 evaluate, 6 capacity plan
(weekly, before the report so the email can show it), 5 report.
  --config PATH     config file (default: env WFM_CONFIG, else config.yaml)
  --as-of DATE      the run's date, YYYY-MM-DD (default: today in the configured timezone); actuals up to the day
                    before are used
  --from STEP       resume at STEP (0, 1, 1_5, 2, 3, 4, 6, 5), e.g. after fixing a failed step
  --demo            first write the synthetic demo exports (deterministic) into the inbox of source.csv_glob
                    (data/inbox/): the history before the as-of; a later as-of adds only the new days' files
  --demo-days N     days of demo history before the (first) night (default 730; e.g. 120 for a quick demo)
  --demo-nights N   replay N nights ending at the as-of (implies --demo): night 1 is the as-of minus N-1 days,
                    each night adds its day's export and runs every step with its own --as-of, so the last night
                    has a track record, alerts and the retraining training.retrain_weekdays asks for. Needs an
                    inbox without exports of those nights (a fresh data folder); not with --from
  --set KEY=VALUE   override a config key for every step (repeatable). Steps 2 and 3 then run as a what-if:
                    the model is registered as staging, never promoted, and the forecast and staffing go to
                    <report.output_dir>/<as-of>/whatif-<run_id>/, not to gold (keys of database.*, source.*,
                    report.* and training.model_dir only say where things are and do not count)
  --publish         with --set: steps 2 and 3 publish as usual (promote, replace the as-of's forecast)
  -h, --help        this text

A second run while one is going is refused with exit code 3 (lock: data/.run_daily.lock).
Log: logs/run_daily_<as-of>_<time>.log. Exit code: 0 when every step succeeded, else the failing step's
(2 = bad input or config, 1 = anything else).
EOT
}
need_value() { [ $# -ge 2 ] || { echo "run_daily.sh: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --config) need_value "$@"; config="$2"; shift 2 ;;
    --as-of) need_value "$@"; as_of="$2"; shift 2 ;;
    --from) need_value "$@"; from_step="$2"; shift 2 ;;
    --demo) demo=1; shift ;;
    --demo-days) need_value "$@"; demo_days="$2"; shift 2 ;;
    --demo-nights) need_value "$@"; demo_nights="$2"; demo=1; shift 2 ;;
    --set) need_value "$@"; extra+=(--set "$2"); shift 2 ;;
    --publish) publish=(--publish); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_daily.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for pair in "demo-days:$demo_days" "demo-nights:$demo_nights"; do
  case "${pair#*:}" in
    ''|*[!0-9]*|0*) echo "run_daily.sh: --${pair%%:*} ${pair#*:}: give a whole number >= 1" >&2; exit 2 ;;
  esac
done
if [ "$demo_nights" -gt 1 ] && [ "$from_step" != "0" ]; then
  echo "run_daily.sh: --demo-nights replays whole nights; --from $from_step cannot be combined with it" >&2
  exit 2
fi

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

steps=(0:0_load_bronze.py 1:1_build_silver.py 1_5:1_5_segment_customers.py 2:2_train.py 3:3_forecast.py 4:4_evaluate.py 6:6_capacity_plan.py 5:5_report.py)
started=0
for entry in "${steps[@]}"; do [ "${entry%%:*}" = "$from_step" ] && started=1; done
if [ "$started" = 0 ]; then
  echo "run_daily.sh: --from $from_step is not a step (${steps[*]%%:*})" >&2
  exit 2
fi

# One night: the steps in order for one as-of, from --from; exits the script at the first failing step.
run_night() {
  local night="$1" started=0 entry id script rc
  for entry in "${steps[@]}"; do
    id="${entry%%:*}"; script="${entry#*:}"
    [ "$id" = "$from_step" ] && started=1
    [ "$started" = 1 ] || { echo "run_daily.sh: skipping step $id ($script): --from $from_step"; continue; }
    echo "run_daily.sh: step $id: $script"
    set +e
    step_args=("${extra[@]}")
    case "$id" in 2|3|6) step_args+=("${publish[@]}") ;; esac  # --publish is a flag of steps 2, 3 and 6 only
    "$py" "$script" --config "$config" --as-of "$night" "${step_args[@]}"
    rc=$?
    set -e
    if [ $rc -ne 0 ]; then
      echo "run_daily.sh: FAILED at step $id ($script) with exit code $rc; fix it and resume with: ./run_daily.sh --as-of $night --from $id${then_rest}" >&2
      # The alert mail (or .eml under output/failures/ without SMTP) and the chat webhooks (alerts.webhooks) must
      # never replace the step's own exit code.
      "$py" -m common.mail --config "$config" --failure --subject "wfm-forecast FAILED at step $id for $night (exit $rc)" \
        --log-file "$log" || true
      "$py" -m common.chat --config "$config" --failure --subject "wfm-forecast FAILED at step $id for $night (exit $rc)" \
        --log-file "$log" || true
      exit $rc
    fi
  done
}

if [ "$demo_nights" -gt 1 ]; then
  # A replay: night 1 is the as-of minus N-1 days; each night adds its own day's export, then runs every step.
  nights=($("$py" -c 'import sys; from datetime import date, timedelta
end, n = date.fromisoformat(sys.argv[1]), int(sys.argv[2])
print(" ".join(str(end - timedelta(days=n - 1 - i)) for i in range(n)))' "$as_of" "$demo_nights"))
  replay=(--replay-start)
  for i in "${!nights[@]}"; do
    left=$((demo_nights - i - 1))
    then_rest=""
    [ "$left" -gt 0 ] && then_rest=", then the other nights with: ./run_daily.sh --demo-nights $left --demo-days $demo_days --as-of $as_of"
    echo "run_daily.sh: night $((i + 1)) of $demo_nights: as_of=${nights[$i]}"
    "$py" -m common.demo --config "$config" --as-of "${nights[$i]}" --days "$demo_days" "${replay[@]}"
    replay=()
    run_night "${nights[$i]}"
  done
  echo "run_daily.sh: all steps succeeded for $demo_nights nights, ${nights[0]} to $as_of"
  exit 0
fi
if [ "$demo" = 1 ]; then
  "$py" -m common.demo --config "$config" --as-of "$as_of" --days "$demo_days"
fi
run_night "$as_of"
echo "run_daily.sh: all steps succeeded for $as_of"
