"""Backup and restore: a consistent snapshot of a running appliance, and its restore."""
