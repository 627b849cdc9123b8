"""Kafka's own rules per release: config catalogues and the broker start-up checks (pure)."""
