"""Nextmv payloads in and out: staging a run input (dict, file, URI, folder), writing a run output.

Plain functions a hook composes; they need nothing back from it. Inputs are never read whole into
memory except a JSON input small enough to go inline (≤ 5 MiB), which is re-serialised compactly so
the size rule and the wire agree; outputs are streamed, bounded, and appear only once complete.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from airflow_provider.exceptions import InvalidInputError
from airflow_provider.protocol import nextmv as proto
from airflow_provider.utils import archives, uris


@contextlib.contextmanager
def open_payload(
    input: Any, input_uri: str | None, input_format: str
) -> Iterator[tuple[uris.InputSource, str]]:
    """Yield the input as a sized source plus a human description, without reading it whole.

    A dict is serialized the way the SDK does (its source is compact JSON already); a local folder
    (multi-file formats) is packed into a temporary tar.gz on disk; anything else is opened through
    smart-open.
    """
    proto.check_input_format(input_format)
    if input is not None:
        if input_format != "json":
            raise InvalidInputError("A dict input is JSON; use input_uri for other input formats.")
        data = proto.serialize_json(input)
        yield uris.InputSource("<input>", io.BytesIO(data), len(data), compact_json=True), "the input"
        return
    assert input_uri is not None
    if (
        input_format in proto.ARCHIVE_FORMATS
        and uris.is_local(input_uri)
        and uris.local_path(input_uri).is_dir()
    ):
        with _tar_directory(uris.local_path(input_uri)) as tarball, uris.open_input(str(tarball)) as source:
            yield source, f"input folder {input_uri}"
        return
    with uris.open_input(input_uri) as source:
        yield source, f"input {uris.describe(input_uri)}"


def inline_input(source: uris.InputSource, input_format: str, what: str) -> bytes | None:
    """The compact JSON to send inline, or None when the input goes through an upload.

    The 5 MiB rule is applied to exactly these bytes (the ones :func:`proto.run_body` splices into
    the request); a file small enough is validated and compacted, a larger one is uploaded as it is.
    """
    if proto.choose_transfer(source.size, input_format) is not proto.Transfer.INLINE:
        return None
    raw = source.fileobj.read()
    data = raw if source.compact_json else proto.compact_json(raw, what)
    if len(data) > proto.MAX_INLINE_BYTES:  # escaping non-ASCII text can grow it past the limit
        source.rewind()
        return None
    return data


@contextlib.contextmanager
def _tar_directory(folder: Path) -> Iterator[Path]:
    """Pack a local input folder into a temporary tar.gz (names relative to the folder, as the SDK)."""
    with tempfile.TemporaryDirectory(prefix="nextmv-input-") as tmp:
        tarball = Path(tmp) / "inputs.tar.gz"
        with tarfile.open(tarball, "w:gz") as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.add(path, arcname=str(path.relative_to(folder)))
        yield tarball


def write_output(chunks: Iterable[bytes], info: proto.OutputInfo, run_id: str, output_uri: str) -> list[str]:
    """Stream an output body to ``output_uri``: one JSON file, or a guarded tar.gz unpack.

    A folder URI (trailing ``/``, or an existing local dir) gets ``<run_id>.json`` inside (the id
    validated first). The body must have the size the run's metadata announced and at most
    :data:`proto.MAX_DOWNLOAD_BYTES`: a download cut short or grown endless is refused before any
    file appears. Archives are first received whole into a temporary file for the same reason.
    """
    expected = info.size or None
    bound = proto.MAX_DOWNLOAD_BYTES
    if not info.is_archive:
        target = uris.output_target(output_uri, run_id)
        archives.copy_bounded(chunks, target, max_total_bytes=bound, expected_bytes=expected)
        return [uris.normalized(target)]
    with tempfile.TemporaryDirectory(prefix="nextmv-output-") as tmp:
        staged = str(Path(tmp) / "output.tar.gz")
        archives.copy_bounded(chunks, staged, max_total_bytes=bound, expected_bytes=expected)
        with open(staged, "rb") as archive:
            return archives.extract_tar_stream(archive, output_uri)
