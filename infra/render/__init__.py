"""Plan -> file contents (Jinja2 templates, checked before they leave) and the inventory (pure)."""
