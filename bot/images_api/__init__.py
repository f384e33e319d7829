"""OpenAI Images API client (no Discord imports): typed requests/events, errors, SSE, model registry."""

from .client import ImagesClient
from .errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ContentBlocked,
    ImagesAPIError,
    InsufficientQuota,
    InvalidRequest,
    PermissionDenied,
    RateLimited,
    ServerError,
    StreamError,
    StreamStalled,
    VerificationRequired,
    error_from_response,
    error_from_stream_payload,
)
from .models import ModelInfo, SizeChoice, get_model
from .sse import SSEMessage, iter_sse
from .types import (
    CONTENT_TYPES,
    CompletedImage,
    EditRequest,
    GenerateRequest,
    ImageEvent,
    InputImage,
    PartialImage,
    Usage,
)

__all__ = [
    "CONTENT_TYPES",
    "AuthenticationFailed",
    "CompletedImage",
    "ConnectionFailed",
    "ContentBlocked",
    "EditRequest",
    "GenerateRequest",
    "ImageEvent",
    "ImagesAPIError",
    "ImagesClient",
    "InputImage",
    "InsufficientQuota",
    "InvalidRequest",
    "ModelInfo",
    "PartialImage",
    "PermissionDenied",
    "RateLimited",
    "SSEMessage",
    "ServerError",
    "SizeChoice",
    "StreamError",
    "StreamStalled",
    "Usage",
    "VerificationRequired",
    "error_from_response",
    "error_from_stream_payload",
    "get_model",
    "iter_sse",
]
