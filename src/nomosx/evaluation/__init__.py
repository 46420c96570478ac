"""Measuring retrieval on public benchmarks (BEIR format)."""
