"""The cache: one protocol, a Redis backend and an embedded (SQLite file) backend."""
