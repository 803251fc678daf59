"""Subcommands of the ``jacobi-forcing`` CLI, one module each (see ``jacobi_forcing_hf.cli``)."""
