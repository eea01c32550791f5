"""Benchmarks: scripts that print figures (docs/benchmarks.md). Not shipped with the app."""
