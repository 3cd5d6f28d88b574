"""The `copyhound` command line (entry point `engine.cli.main:main`); the only wing that parses arguments."""
