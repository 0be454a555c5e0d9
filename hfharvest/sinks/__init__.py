"""Sinks: where the harvest's final records go, through one small interface (`base.Sink`).

`pick.open_sink` is the one place that picks among them for an output target: JSON or JSONL
(`jsonl`), gzipped or not, to a file or to stdout, or Parquet (`parquet`, with pyarrow). The
Python API hands records over through its own sink (`handover`). Every file is written all or
nothing (`files`); `target` resolves where a run's output goes.
"""
