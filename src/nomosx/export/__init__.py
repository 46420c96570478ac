"""Exports of a brief beyond the editor's Markdown, HTML and JSON: its sources as BibTeX."""

from nomosx.export.bibtex import bibtex_entry_type, brief_bibtex, citation_keys, sources_bibtex

__all__ = ["bibtex_entry_type", "brief_bibtex", "citation_keys", "sources_bibtex"]
