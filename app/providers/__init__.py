"""Upstream providers: OpenAI-compatible HTTP deployments, the offline mock, and the router."""

from app.providers.base import Deployment, StreamHandle, UpstreamReply, map_transport_error, upstream_error
from app.providers.groups import ModelGroup, ModelRouter

__all__ = ["Deployment", "ModelGroup", "ModelRouter", "StreamHandle", "UpstreamReply", "map_transport_error",
           "upstream_error"]
