"""What both directions of the OTLP/JSON codec must agree on.

The encoder must never write a request the decoder refuses, so the one limit they share,
how deep attribute values may nest, is defined once, here.
"""

from __future__ import annotations

from typing import Final

#: AnyValue levels (arrayValue / kvlistValue inside one another) accepted by both
#: directions. Protobuf (upb, C++) parses at most 100 nested messages; an event's
#: attribute is 7 deep and each kvlistValue level adds 3, so 32 levels is the most a
#: decoded request can hold and still be serialized and parsed back anywhere.
_MAX_DEPTH: Final = 32
