"""Provisioning with Pulumi on Docker: the program, its stack outputs and its components."""
