"""Pulumi ComponentResources over pulumi-docker: they declare, the plan decides."""
