#!/usr/bin/env bash
# Set up (a .venv with the pinned requirements) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
python_bin="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
# The runtime pins (requirements.txt) and the test pins on top (requirements-test.txt); reinstalled when either
# changes. Its own stamp, so run_daily.sh (runtime only) and this never undo each other's install.
req_hash="$(cat requirements.txt requirements-test.txt | sha256sum | cut -c1-64)"
if [ "$(cat .venv/.requirements-test.sha256 2>/dev/null || true)" != "$req_hash" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
  echo "$req_hash" > .venv/.requirements-test.sha256
fi
# One worker per core (WFM_TEST_WORKERS=0 runs them in this process); a test file stays on one worker, because a
# file's tests may share a module fixture (test_pipeline's demo project) and run in order.
exec .venv/bin/python -m pytest -q -n "${WFM_TEST_WORKERS:-auto}" --dist loadfile "$@"
