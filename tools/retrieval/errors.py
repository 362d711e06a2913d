"""Errors the retrieval library raises for input it cannot accept."""


class DocumentError(ValueError):
    """A document cannot be ingested (empty, corrupt, encrypted, binary, unsupported).

    The message is meant for the person who uploaded the file.
    """


class DocumentTooLarge(DocumentError):
    """A document is over a size limit (pages, extracted text): HTTP 413 rather than 422."""
