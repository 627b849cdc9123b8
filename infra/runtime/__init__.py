"""The local runtime: the planned cluster and its consumer groups as processes on this machine."""
