"""`python -m edgelstm`: the CLI, for devices where only the venv's python is on the PATH."""

from .cli import main

main()
