"""Scholarly sources: identifier and text normalisation shared by every provider and reader.

``nomosx.sources.normalise`` holds the pure functions that make a DOI, a title or an
abstract comparable across providers, and that derive a source's stable ``key``.
"""
