"""The command-line programs and the paper's configs (importable by name, e.g. in tests)."""
