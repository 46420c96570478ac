"""The HTTP API (FastAPI): chat with streaming, briefs as jobs, health, metrics."""
