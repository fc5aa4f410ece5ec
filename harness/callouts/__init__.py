"""Python callouts for the engine model: the reference callout and its mutants."""
