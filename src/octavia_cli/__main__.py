"""``octavia``: help from its cache without importing the command line (see
:mod:`octavia_cli.help_cache`), everything else through :func:`octavia_cli.cli.main`."""

import sys


def main() -> None:
    from octavia_cli.help_cache import print_cached

    if print_cached(sys.argv[1:]):
        sys.exit(0)
    from octavia_cli.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
