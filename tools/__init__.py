"""Commands around the pipeline that no stage runs: presets for `dvc exp run`, the offline plots page."""
