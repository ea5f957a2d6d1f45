"""Minimal `multipart/form-data` parsing (no `cgi`, which Python 3.13 removed)."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.parser import BytesParser


@dataclass
class FormPart:
    """One form field: its name, the filename for file fields, and the raw bytes."""

    name: str
    filename: str | None
    data: bytes


def _header_params(raw_headers: bytes) -> tuple[str | None, str | None]:
    """(field name, filename) from a part's header block."""
    message = BytesParser(policy=policy.HTTP).parsebytes(raw_headers + b"\r\n\r\n", headersonly=True)
    name = message.get_param("name", header="content-disposition")
    filename = message.get_filename()
    return (str(name) if name is not None else None), filename


def boundary_of(content_type: str) -> bytes:
    """The boundary from a `multipart/form-data; boundary=...` header.

    Raises ValueError when the header is not multipart or has no boundary.
    """
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n", headersonly=True
    )
    if message.get_content_type() != "multipart/form-data":
        raise ValueError(f"expected multipart/form-data, got {content_type!r}")
    boundary = message.get_param("boundary")
    if not boundary:
        raise ValueError("multipart body without a boundary")
    return str(boundary).encode("latin-1")


def parse_form(content_type: str, body: bytes) -> dict[str, FormPart]:
    """Split a multipart body into its fields, keyed by field name (last one wins).

    Part bodies are returned byte for byte (line endings untouched).
    Raises ValueError on a missing boundary or a part without a header block.
    """
    delimiter = b"--" + boundary_of(content_type)
    fields: dict[str, FormPart] = {}
    chunks = body.split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without a blank line after its headers")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        name, filename = _header_params(head)
        if name is not None:
            fields[name] = FormPart(name=name, filename=filename, data=data)
    return fields
