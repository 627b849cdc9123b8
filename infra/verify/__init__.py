"""The verify verb: runs the live testinfra suite (tests/infra/) and reports one table."""
