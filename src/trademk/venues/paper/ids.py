"""Venue order ids for the paper venue: random (version 4) UUID strings.

``str(uuid.uuid4())`` reads ``os.urandom`` once per id, and that system call
releases the GIL in the middle of the order path: a thread waiting for the GIL
(the SQLite journal's worker, say) then takes it and the order waits for it.
``UuidIds`` reads 4 KiB of ``os.urandom`` at a time instead (one read per 256
ids) and formats the UUID itself, which is also a few times faster. The ids are
exactly as random as ``uuid.uuid4()``'s.
"""

from __future__ import annotations

import os
from typing import Final

_POOL_BYTES: Final = 4096
_ID_BYTES: Final = 16
_VARIANT_DIGITS: Final = "89ab"  # RFC 4122 variant: the top two bits of byte 8 are 10


class UuidIds:
    """A callable making ``str(uuid.uuid4())``-style ids from pooled ``os.urandom`` bytes.

    A forked child never reuses its parent's pool (the pool belongs to the pid
    that read it). One instance serves one thread.
    """

    __slots__ = ("_offset", "_pid", "_pool")

    def __init__(self) -> None:
        self._pool = b""
        self._offset = 0
        self._pid = -1

    def __call__(self) -> str:
        offset = self._offset
        if offset >= len(self._pool) or self._pid != os.getpid():
            self._pool = os.urandom(_POOL_BYTES)
            self._pid = os.getpid()
            offset = 0
        self._offset = offset + _ID_BYTES
        digits = self._pool[offset : offset + _ID_BYTES].hex()
        variant = _VARIANT_DIGITS[int(digits[16], 16) & 3]
        return (
            f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"
        )
