"""The upstream wire: request heads checked before they leave, the HTTP/1.1 client transport, egress proxies."""
