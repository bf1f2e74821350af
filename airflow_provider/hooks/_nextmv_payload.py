"""Nextmv payloads in and out: staging a run input (dict, file, URI, folder), writing a run output."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_provider.exceptions import InvalidInputError
from airflow_provider.protocol import nextmv as proto
from airflow_provider.utils import uris


@contextlib.contextmanager
def open_payload(
    input: Any, input_uri: str | None, input_format: str
) -> Iterator[tuple[uris.InputSource, str]]:
    """Yield the input as a sized source plus a human description, without reading it whole.

    A dict is serialized the way the SDK does; a local folder (multi-file formats) is packed into a
    temporary tar.gz on disk; anything else is opened through smart-open.
    """
    if input is not None:
        if input_format != "json":
            raise InvalidInputError("A dict input is JSON; use input_uri for other input formats.")
        data = proto.serialize_json(input)
        yield uris.InputSource("<input>", io.BytesIO(data), len(data)), "the input"
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


def parse_inline_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise InvalidInputError(
            f"{what} is not valid JSON: {exc}. Fix the file, or set input_format='text'."
        ) from exc


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


def write_output(response: Any, info: proto.OutputInfo, run_id: str, output_uri: str) -> list[str]:
    """Stream an output response body to ``output_uri``: one JSON file, or a guarded tar.gz unpack.

    A folder URI (trailing ``/``, or an existing local dir) gets ``<run_id>.json`` inside. The body
    must have the size the run's metadata announced: a download cut short is refused before any
    file appears. Archives are first received whole into a temporary file for the same reason (a
    truncated tar.gz would otherwise leave some members unpacked and others missing).
    """
    from airflow_provider.utils import archives

    expected = info.size or None
    with contextlib.closing(response):
        response.raw.decode_content = True
        if not info.is_archive:
            target = uris.join(output_uri, f"{run_id}.json") if uris.is_folder_uri(output_uri) else output_uri
            archives.copy_bounded_stream(
                response.raw, target, max_total_bytes=proto.MAX_DOWNLOAD_BYTES * 2, expected_bytes=expected
            )
            return [uris.normalized(target)]
        with tempfile.TemporaryDirectory(prefix="nextmv-output-") as tmp:
            staged = str(Path(tmp) / "output.tar.gz")
            archives.copy_bounded_stream(
                response.raw, staged, max_total_bytes=proto.MAX_DOWNLOAD_BYTES * 2, expected_bytes=expected
            )
            with open(staged, "rb") as archive:
                return archives.extract_tar_stream(archive, output_uri)
