"""NomosX: research intelligence that answers a question with a cited decision brief."""

__version__ = "0.1.0"
