"""The request path: the ASGI front door, body validation, the proxy and the stream relay."""
