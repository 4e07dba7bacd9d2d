"""Production runs (one module per kind, each with a ``Config``, ``run(config, out)`` and
``add_parser(subparsers)`` for its command-line subcommand)."""
