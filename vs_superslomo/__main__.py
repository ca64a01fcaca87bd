"""``python -m vs_superslomo`` runs the command line."""

from .cli import entry

entry()
