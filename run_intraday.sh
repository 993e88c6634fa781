#!/usr/bin/env bash
# The intraday reforecast for cron: its own lock, a dated log, never waits for the nightly run. ./run_intraday.sh --help
#
# cron (every 30 minutes, 07:00-21:30):
#   */30 7-21 * * *  cd /opt/wfm-forecast && ./run_intraday.sh --config config.yaml >> logs/cron_intraday.log 2>&1
# Exit code: 0 on success (or skipped because the nightly run is going), 3 when a reforecast is still running,
# else 3_5_reforecast_intraday.py's (2 = bad input or config, 1 = other).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
config="${WFM_CONFIG:-config.yaml}"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) [ $# -ge 2 ] || { echo "run_intraday.sh: --config needs a value" >&2; exit 2; }; config="$2"; shift 2 ;;
    -h|--help) cat <<'EOT'
The intraday reforecast: today's remaining intervals from today's calls so far (3_5_reforecast_intraday.py).

  ./run_intraday.sh [--config PATH] [any 3_5_reforecast_intraday.py option, e.g. --at 12:00]

Lock: data/.run_intraday.lock (a second reforecast while one runs exits 3). While the nightly run holds
data/.run_daily.lock, the reforecast does not load new export rows (the night is loading them) and works from
bronze as it is; it never takes or waits for the nightly lock. Log: logs/run_intraday_<date>.log (appended).
EOT
      exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
[ -x .venv/bin/python ] || { echo "run_intraday.sh: no .venv yet: run ./run_daily.sh once first" >&2; exit 2; }
case "${WFM_UMASK:-077}" in
  077|027|007) umask "${WFM_UMASK:-077}" ;;
  *) echo "run_intraday.sh: WFM_UMASK=$WFM_UMASK: use 077 or 027" >&2; exit 2 ;;
esac

mkdir -p data logs
exec 8>data/.run_intraday.lock
if ! flock -n 8; then
  echo "run_intraday.sh: a reforecast is still running (lock data/.run_intraday.lock); not starting another" >&2
  exit 3
fi
# The nightly run's lock is only looked at (its pid file), never taken: the night must never find it held.
night_pid="$(cat data/.run_daily.pid 2>/dev/null || true)"
if [ -n "$night_pid" ] && kill -0 "$night_pid" 2>/dev/null \
    && grep -q run_daily "/proc/$night_pid/cmdline" 2>/dev/null; then
  echo "run_intraday.sh: the nightly run (pid $night_pid) is going: reforecasting from bronze as it is (--no-load)"
  extra+=(--no-load)
fi
log="logs/run_intraday_$(date +%Y-%m-%d).log"
.venv/bin/python 3_5_reforecast_intraday.py --config "$config" "${extra[@]}" 2>&1 | tee -a "$log"
exit "${PIPESTATUS[0]}"
