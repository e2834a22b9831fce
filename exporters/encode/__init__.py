"""Span readers and encoders several destinations share: OTLP protobuf, OpenAI shapes, call records."""
