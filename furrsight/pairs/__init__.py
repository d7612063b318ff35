"""Pairs: before/after candidates mined from what ingest and search know, analysed by a model,
decided by people."""
