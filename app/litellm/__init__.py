"""LiteLLM's callback surface: users' ``CustomLogger`` handlers, their loader, kwargs and destinations."""
