"""The one classifier of S3 failures: a boto3/botocore error, or an answer's code and status,
to a reason from the shared catalogue (`videopipe.reasons`).

The operator's store errors and source conditions, its S3 error metric, the runner's locks and
the worker's exit codes all read S3 errors here, so that an error has one name everywhere.
Callers decide what a reason means to them (the worker: which exit code; the operator: which
answers are control flow, such as 404 on HEAD or 412 on a conditional write).
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from videopipe.reasons import Reason

_BY_CODE = {
    "NoSuchBucket": Reason.BUCKET_NOT_FOUND,
    "NoSuchKey": Reason.OBJECT_NOT_FOUND,
    "NotFound": Reason.OBJECT_NOT_FOUND,
    "404": Reason.OBJECT_NOT_FOUND,
    "AccessDenied": Reason.ACCESS_DENIED,
    "InvalidAccessKeyId": Reason.ACCESS_DENIED,
    "SignatureDoesNotMatch": Reason.ACCESS_DENIED,
    "Forbidden": Reason.ACCESS_DENIED,
    "403": Reason.ACCESS_DENIED,
    "KeyTooLongError": Reason.KEY_TOO_LONG,
    "SlowDown": Reason.THROTTLED,
    "ServiceUnavailable": Reason.UNAVAILABLE,
    "InternalError": Reason.UNAVAILABLE,
}
_UNREACHABLE = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ConnectionClosedError,
    ReadTimeoutError,
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def classify_answer(code: str, http_status: int | None) -> Reason:
    """The reason for an S3 error answer with this error `code` and HTTP status."""
    reason = _BY_CODE.get(code)
    if reason is not None:
        return reason
    if http_status == 403:
        return Reason.ACCESS_DENIED
    if http_status == 404:
        return Reason.OBJECT_NOT_FOUND
    return Reason.STORAGE_ERROR


def classify(exc: BaseException) -> Reason:
    """The reason for a failed boto3 call: an error answer, or no answer at all."""
    if isinstance(exc, _UNREACHABLE):
        return Reason.ENDPOINT_UNREACHABLE
    if isinstance(exc, NoCredentialsError):
        return Reason.ACCESS_DENIED
    if isinstance(exc, ClientError):
        return classify_answer(error_code(exc), status(exc))
    return Reason.STORAGE_ERROR


__all__ = ["classify", "classify_answer", "error_code", "status"]
