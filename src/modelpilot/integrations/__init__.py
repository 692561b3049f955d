"""What other tools call or receive: ``check`` for CI pipelines, the MLflow import, ..."""
