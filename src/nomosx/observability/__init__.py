"""Observability: Prometheus metrics, structured logs with request ids, Sentry with
secrets scrubbed. ``setup.configure(settings)`` turns it on at a process's edge."""
