"""Briefs as background jobs: the queue interface and its in-process implementation
(embedded mode). A Redis-backed queue with distributed workers implements the same
interface (issue 8)."""
