"""Users, their API keys and their limits."""
