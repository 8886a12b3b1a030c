"""An indexing run: the scan, its progress, and the background jobs that start it."""
