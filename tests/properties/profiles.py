"""Hypothesis budgets for the property tests, chosen by NETDSL_HYPOTHESIS_PROFILE.

`ci` (the default) is derandomized: the same 200+ programs on every run, so CI is reproducible
and stays within about two minutes. `long` draws fresh random programs, ten times as many, and
remembers failures in Hypothesis's example database:

    NETDSL_HYPOTHESIS_PROFILE=long .venv/bin/pytest -q tests/properties
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

PROFILES = {
    "ci": settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=_SLOW_IS_FINE),
    "long": settings(max_examples=2000, deadline=None, suppress_health_check=_SLOW_IS_FINE),
}

# The graph strategies (test_graph_agreement.py): 400 derandomized programs each, about a minute of
# CPU for both together (three small Keras builds per valid graph); `long` runs ten times as many.
GRAPH_PROFILES = {
    "ci": settings(PROFILES["ci"], max_examples=400),
    "long": settings(PROFILES["long"], max_examples=4000),
}

NAME = os.environ.get("NETDSL_HYPOTHESIS_PROFILE", "ci")
if NAME not in PROFILES:
    raise ValueError(f"NETDSL_HYPOTHESIS_PROFILE must be one of {', '.join(PROFILES)}, got {NAME!r}")
PROFILE = PROFILES[NAME]
GRAPH_PROFILE = GRAPH_PROFILES[NAME]
