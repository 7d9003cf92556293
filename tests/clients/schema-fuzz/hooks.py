"""schemathesis hooks for foodcheck (loaded by ../run-schema-fuzz.sh through SCHEMATHESIS_HOOKS)."""

import schemathesis
from schemathesis.transport.serialization import serialize_binary


# tus PATCH bodies (`application/offset+octet-stream`) are raw bytes, like octet-stream.
@schemathesis.serializer("application/offset+octet-stream")
def tus_chunk(ctx, value):
    return {"data": serialize_binary(value)}
