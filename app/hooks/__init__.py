"""Code that acts on each call at fixed points: the hook chain and the built-in moderation hook."""
