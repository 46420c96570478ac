"""Per-user limits: requests per minute, concurrent streams and a daily LLM budget."""
