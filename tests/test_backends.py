"""Other Keras 3 backends: the compiled model is plain Keras, so the seed specs build under JAX too.

Runs in a subprocess because Keras fixes its backend at import time (KERAS_BACKEND). Needs the
`jax` extra (`pip install -e '.[jax]'`, part of `make setup`); skipped where JAX is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SPECS
from tests.test_specs import SEED

SCRIPT = """
import json, sys
import netdsl
out = {}
for name in sys.argv[2:]:
    verification = netdsl.verify(f"{sys.argv[1]}/{name}.net")
    report = verification.report
    differences = [d.message for d in verification.differences]
    out[name] = [verification.backend, differences, report.total_params, report.trainable_params,
                 report.non_trainable_params]
namespace = {"__name__": "emitted"}
exec(netdsl.emit(netdsl.load(f"{sys.argv[1]}/resnet.net")), namespace)
out["emitted resnet"] = namespace["build_model"]().count_params()
out["tensorflow imported"] = "tensorflow" in sys.modules
print(json.dumps(out))
"""


@pytest.mark.keras
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (pip install -e '.[jax]')")
def test_seed_specs_build_with_the_same_counts_under_jax() -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(SPECS), *sorted(SEED)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for name, (total, trainable, non_trainable) in SEED.items():
        assert out[name] == ["jax", [], total, trainable, non_trainable], name
    assert out["emitted resnet"] == SEED["resnet"][0]
    assert out["tensorflow imported"] is False  # only public keras.* layers: nothing TensorFlow-specific
