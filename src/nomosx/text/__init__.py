"""Text utilities shared by retrieval, reading and the guard."""
