"""Hybrid retrieval: lexical and dense hits fused, then reranked."""
