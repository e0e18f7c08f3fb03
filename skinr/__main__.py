"""``python -m skinr``: the command-line interface."""

from .cli import main

# Guarded: tools that import every module (mkdocs, doc builders) must not run the CLI.
if __name__ == "__main__":
    raise SystemExit(main())
