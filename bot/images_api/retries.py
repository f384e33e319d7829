"""Second chances after the Images API refused a request, each taken only where it cannot bill twice: an
optional field the service does not know left out, a stream asked again without streaming. (The retry delay
and a gateway's cooldown are the client's: ``ImagesClient._after_refusal``.)"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .errors import GatewayCannotStream, ImagesAPIError
from .stream_gate import StreamGate, stream_failure

log = logging.getLogger("bot.images_api.client")  # these lines belong to the client's request log

# Optional fields the bot adds itself: a 400 naming one drops it (once, remembered per endpoint).
OPTIONAL_FIELDS = ("input_fidelity", "output_compression", "moderation", "safety_identifier")
MAX_FIELD_DROPS = 2


@dataclass
class Tries:
    """One request's tries so far: whether it still streams, and which second chances it has used."""

    stream: bool
    attempt: int = 0  # retries after an error
    fell_back: bool = False  # asked again without streaming
    cooled: bool = False  # waited out a gateway's cooldown once
    drops: int = 0  # optional fields left out


def drop_refused_field(dropped: dict[str, set[str]], path: str, err: ImagesAPIError, tries: Tries) -> bool:
    """A 400 naming an optional field the bot adds: leave it out of ``path``'s requests from now on (True),
    at most ``MAX_FIELD_DROPS`` times per request."""
    field = err.names_field(f for f in OPTIONAL_FIELDS if f not in dropped.get(path, ()))
    if field is None or tries.drops >= MAX_FIELD_DROPS:
        return False
    tries.drops += 1
    dropped.setdefault(path, set()).add(field)
    log.warning(
        "%s refused the optional field %r (request_id=%s): retrying without it and not "
        "sending it again; the service said: %s",
        path,
        field,
        err.request_id,
        err.message,
    )
    return True


async def stop_streaming(streams: StreamGate, err: ImagesAPIError, tries: Tries) -> bool:
    """A stream the service refused, or broke in a way that proves it cannot stream: ask again without
    streaming (True). Raises ``GatewayCannotStream`` when the broken stream may have been billed."""
    refused = err.cannot_stream if err.status == 400 or err.refuses_streaming else None
    if refused is not None:  # refused before generating anything: trying again costs nothing
        streams.refused(refused, err.request_id)
        tries.stream, tries.fell_back = False, True
        return True
    billed = stream_failure(err)
    if billed is None:
        return False
    if not await streams.discover(billed, err):
        raise GatewayCannotStream(
            f"{billed}; not retried, it may have been billed already",
            status=err.status,
            request_id=err.request_id,
            from_gateway=True,
        ) from None
    tries.stream, tries.fell_back = False, True
    return True
