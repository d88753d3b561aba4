"""Contract test suites shipped with labelwise (strategies, stores)."""
