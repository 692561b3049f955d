"""The model server: predict, feedback, health and metrics over HTTP, plus batch scoring.

Public API::

    from modelpilot.serving import create_app, run_server, start_in_thread, predict_batch
    from modelpilot.serving import PredictionLogWriter, PredictionLogReader

``serving`` never imports ``training``: it loads what training registered (a skops
pipeline and its signature) through the store and the artifact store.
"""

from __future__ import annotations

from modelpilot.serving.app import create_app
from modelpilot.serving.batch import predict_batch
from modelpilot.serving.cache import LoadedModel, ModelCache, Prediction
from modelpilot.serving.metrics import ServingMetrics
from modelpilot.serving.predlog import (
    FeedbackBatch,
    PredictionBatch,
    PredictionLogReader,
    PredictionLogWriter,
)
from modelpilot.serving.server import ThreadedServer, run_server, start_in_thread

__all__ = [
    "FeedbackBatch",
    "LoadedModel",
    "ModelCache",
    "Prediction",
    "PredictionBatch",
    "PredictionLogReader",
    "PredictionLogWriter",
    "ServingMetrics",
    "ThreadedServer",
    "create_app",
    "predict_batch",
    "run_server",
    "start_in_thread",
]
