"""The ``nomosx`` command line. Modules import heavy dependencies inside commands so that
``nomosx --help`` starts fast."""
