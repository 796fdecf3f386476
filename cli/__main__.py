"""`python -m cli`: the `flowforge` command."""

from cli.main import main

main()
