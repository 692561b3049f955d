"""Code shared by the benchmarks and the side venvs they compare against.

Nothing here imports modelpilot: these modules run in ``benchmarks/.venvs/<name>`` (MLflow,
Evidently) as well as in the project's own venv, so both sides fit and score with the same
code.
"""
