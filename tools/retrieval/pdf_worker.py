"""PDF text extraction in a child process with its own CPU, memory and output bounds.

pypdf is pure Python: a small PDF whose content streams inflate to tens of megabytes of text
operators (a "PDF bomb") kept one CPU busy for a minute in the app process. Extraction runs here
instead: `extract_pdf` starts this file as a child (niced, with RLIMIT_CPU and RLIMIT_AS set by the
child before it reads anything), feeds it the bytes on stdin and reads one JSON answer; the parent
kills it past the wall-clock limit. Pages, inflated content-stream bytes and extracted characters
are each counted and cut off at their limit. Standalone: it imports only pypdf.
"""
from __future__ import annotations

import io
import json
import logging
import os
import resource
import sys


def _extract(data: bytes, limits: dict) -> dict:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not _opens_without_password(reader):
            return {"error": "encrypted"}
        n_pages = len(reader.pages)
        if n_pages > limits["max_pages"]:
            return {"error": "too_large", "what": "pages", "value": n_pages}
        # Inflating is cheap, interpreting is not: measure every page's content before extracting any.
        content_bytes = 0
        for number, page in enumerate(reader.pages, 1):
            contents = page.get_contents()
            size = len(contents.get_data()) if contents is not None else 0
            if size > limits["max_page_content_bytes"]:
                return {"error": "too_large", "what": "page_content_bytes", "value": size, "page": number}
            content_bytes += size
            if content_bytes > limits["max_content_bytes"]:
                return {"error": "too_large", "what": "content_bytes", "value": content_bytes}
        chars, pages = 0, []
        for page in reader.pages:
            text = page.extract_text() or ""
            chars += len(text)
            if chars > limits["max_chars"]:
                return {"error": "too_large", "what": "chars", "value": chars}
            pages.append(text)
    except MemoryError:
        return {"error": "memory"}
    except Exception as exc:  # pypdf raises many types on damaged files
        return {"error": "corrupt", "type": type(exc).__name__}
    return {"pages": pages}


def _opens_without_password(reader) -> bool:  # noqa: ANN001 - pypdf.PdfReader
    """True when an encrypted PDF opens with the empty user password (permissions-only PDFs)."""
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def main() -> None:
    limits = json.loads(sys.argv[1])
    os.nice(10)  # other requests keep their share of the CPU
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    answer = _extract(sys.stdin.buffer.read(), limits)
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    main()
