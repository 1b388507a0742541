"""Differential fuzzing: the native CPU oracle, the fuzzers and the campaigns (docs/testing.md)."""
