"""Configuration: ``config.yaml`` read once at start-up into typed, frozen settings."""
