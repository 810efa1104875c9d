"""Configuration: load and validate YAML (every problem listed), ${VAR} reading, speech routes."""
