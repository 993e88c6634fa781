#!/usr/bin/env bash
# Set up (a .venv with the pinned requirements) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
python_bin="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
req_hash="$(sha256sum requirements.txt | cut -c1-64)"
if [ "$(cat .venv/.requirements.sha256 2>/dev/null || true)" != "$req_hash" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$req_hash" > .venv/.requirements.sha256
fi
exec .venv/bin/python -m pytest -q "$@"
