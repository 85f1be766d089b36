"""Judging runs: `evt compare` (thresholds, statistics, perf-gate baselines) and `evt report`
(Markdown and plots)."""
