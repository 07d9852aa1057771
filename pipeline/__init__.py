"""The glue a user drives: CLI, stage runner, datasets, predictors, boundaries, reports."""

__version__ = "0.1.0"
