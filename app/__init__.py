"""Spangate: an OpenAI-compatible LLM gateway where every call is one OpenTelemetry GenAI span."""

__version__ = "0.1.0"
