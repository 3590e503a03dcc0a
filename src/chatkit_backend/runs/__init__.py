"""Runs in production: one per thread, stoppable from anywhere, limited and accounted."""
