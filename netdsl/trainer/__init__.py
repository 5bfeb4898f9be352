"""`netdsl train`, `evaluate` and `predict` as library calls, one job per module:

head.py (which loss the network's last layers ask for), config.py (options and phases), optimize.py
(optimizer, schedule, loss), backends.py (the per-backend table: logs, seeding, input pipeline),
pipeline.py (scaling and augmentation), callbacks.py (the per-epoch recorder), fit.py (the fit loops),
curves.py (curves.png), orchestrate.py (`train`), inference.py (`load_run`, `evaluate`, `predict`).

TensorFlow is imported only when a function trains or loads a model.
"""

from __future__ import annotations

from netdsl.trainer.inference import evaluate, load_run, predict
from netdsl.trainer.orchestrate import TrainResult, train

__all__ = ["TrainResult", "evaluate", "load_run", "predict", "train"]
