"""Scheduling items x attempts: concurrency, retries, journal, progress, resume, rescore.

The entry points are in `k2eval.engine.runner` (`run_task`, `resume_run`, `rescore_run`); this
package imports nothing itself, so that commands that only need a piece of it (signals,
progress) stay quick to start.
"""
