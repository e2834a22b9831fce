"""Langfuse destination: settings (``config``), pure span mapping (``encode``), transport (``exporter``)."""

from exporters.langfuse.config import LangfuseConfig
from exporters.langfuse.encode import encode_langfuse
from exporters.langfuse.exporter import LangfuseSpanExporter

__all__ = ["LangfuseConfig", "LangfuseSpanExporter", "encode_langfuse"]
