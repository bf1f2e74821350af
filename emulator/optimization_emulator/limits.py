"""The size limits Nextmv Cloud documents, in one place.

"Large payloads on remote runs" (Nextmv docs): 5 MB for a run's inline input and output, at most
500 MB per upload to a presigned URL, at most 100 MB per download. The official SDK switches to the
upload path above 5 MiB (5,242,880 bytes, ``nextmv.cloud.application._run._MAX_RUN_SIZE``), so the
emulator takes "5 MB" to mean 5 MiB; the upload and download limits are read as decimal megabytes,
as the docs print them. A config file may lower or raise them (``"limits"``) to test a client's
behaviour at the edges without moving hundreds of megabytes.
"""

from __future__ import annotations

import dataclasses

#: Inline run input (JSON body of POST /runs) and inline run output (GET /runs/{id}).
INLINE_BYTES = 5 * 1024 * 1024
#: One presigned upload (PUT).
UPLOAD_BYTES = 500_000_000
#: One presigned download (GET); a run whose output is bigger fails.
DOWNLOAD_BYTES = 100_000_000


@dataclasses.dataclass(frozen=True)
class Limits:
    inline_bytes: int = INLINE_BYTES
    upload_bytes: int = UPLOAD_BYTES
    download_bytes: int = DOWNLOAD_BYTES

    @property
    def extracted_bytes(self) -> int:
        """Most bytes a multi-file input archive may unpack to (guards against gzip bombs)."""
        return 4 * self.upload_bytes
