"""Retrieval over the library: the lexical (BM25) index."""
