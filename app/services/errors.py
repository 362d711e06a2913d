"""Errors services raise for requests they refuse; the app turns each into its HTTP status with the
message (app/main.py), so routes stay thin and services know nothing of HTTP."""


class ServiceError(Exception):
    """A refused request; `status` is the HTTP status it becomes."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(ServiceError):
    status = 400


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class TooLarge(ServiceError):
    status = 413


class Unusable(ServiceError):
    """Well-formed but unusable content (an encrypted PDF, a question longer than the window)."""

    status = 422


class Upstream(ServiceError):
    """The model backend failed."""

    status = 502
