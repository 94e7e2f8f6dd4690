"""Run directories (the unit every command reads), their typed records, the nightly history
index and the response cache: `k2eval.store.rundir`, `runlog`, `history`, `cache`."""
