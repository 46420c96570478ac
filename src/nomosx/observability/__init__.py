"""Observability: Prometheus metrics (and, later, logging and error tracking)."""
