"""The Grafana dashboard in monitoring/ reads only metrics the pipeline writes, and shows every one of them."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

from prometheus_client.parser import text_string_to_metric_families

from common import prom_metrics
from common.prom_metrics import DatabaseState, StepOutcome
from tests.conftest import REPO

DASHBOARD = REPO / "monitoring" / "grafana-dashboard.json"
METRIC = re.compile(r"\bwfm_[a-z0-9_]+")


def _written() -> set[str]:
    """Every sample name the pipeline writes (a state with each part present)."""
    outcome = StepOutcome("4_evaluate", run_id="r", as_of=date(2025, 3, 10), status="success", rows_written=1)
    state = DatabaseState(date(2025, 3, 9), date(2025, 3, 9), [("queue", "A", 0.1, 0.0, 0.2, 5)], date(2025, 3, 10),
                          {"warning": 0, "critical": 1})
    text = (prom_metrics.render(prom_metrics.step_registry(outcome, 1.0, 1.0, datetime(2025, 3, 10)))
            + prom_metrics.render(prom_metrics.state_registry(state, date(2025, 3, 10), "Europe/Stockholm")))
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out += [panel, *panel.get("panels", [])]
    return out


def test_the_dashboard_parses_and_queries_only_metrics_we_write_and_all_of_them() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = _panels(dashboard)
    queries = [t["expr"] for p in panels for t in p.get("targets", [])]
    used = {name for q in queries for name in METRIC.findall(q)}
    written = _written()
    assert used <= written, f"the dashboard queries metrics nobody writes: {sorted(used - written)}"
    # The *_as_of timestamps of the state file are context, read by people in the file; all others are on a panel.
    unused = {n for n in written - used if not n.startswith(("wfm_state_", "wfm_alerts_as_of"))}
    assert not unused, f"metrics the dashboard does not show: {sorted(unused)}"
    assert all(METRIC.search(q) for q in queries)
    assert len({p["id"] for p in panels}) == len(panels)
    data_panels = [p for p in panels if p["type"] != "row"]
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for p in data_panels)
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]


def test_the_monitoring_doc_names_only_metrics_we_write_and_all_of_them() -> None:
    doc = (REPO / "docs" / "monitoring.md").read_text()
    # File names (wfm_forecast_<step>.prom, wfm_forecast_state.prom) are not metrics.
    named = set(re.findall(r"\bwfm_[a-z0-9_]+(?![a-z0-9_<]|\.prom)", doc))
    assert named == _written()
