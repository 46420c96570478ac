"""The stages of one brief: scout, index, rank, read, analyse, guard, edit.

Each stage is a small ``Protocol`` (``nomosx.pipeline.protocols``) with one method; the
built-in implementations live in one module per stage.
"""
