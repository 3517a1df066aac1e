"""One module per subcommand; each exposes a function that returns an exit code.

A command parses nothing itself (`mlops.parsers` does), imports no other
command module, and leaves the work to `mlops.services` and the pure modules.
"""

from mlops.context import Context

__all__ = ["Context"]
