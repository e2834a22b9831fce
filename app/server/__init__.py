"""One worker's assembly and its serving: the app factory, telemetry wiring, uvicorn limits, start-up."""
