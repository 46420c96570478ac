"""The one way NomosX calls a language model: typed requests, provider adapters on the
official SDKs, and a router that adds retries, fallback, a circuit breaker, caching and
cost accounting around the same interface."""
