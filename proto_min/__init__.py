# Minimal protobuf codec: schemas are flat tuples, messages are dicts.
from proto_min.codec import (I32, I64, U32, U64, BOOL, STR, BYTES,  # noqa: F401
                             DecodeError, EncodeError, decode, encode)
