"""NanoMQ's /api/v4 result codes, and the one exception a handler raises to answer with one."""

from __future__ import annotations

SUCCEED = 0
RPC_ERROR = 101  # NanoMQ's answer for an unknown configuration section or control action
UNKNOWN_MISTAKE = 102  # unknown path or method
MISSING_KEY_REQUEST_PARAMS = 107
REQ_PARAM_ERROR = 108
REQ_PARAMS_JSON_FORMAT_ILLEGAL = 109
PLUGIN_IS_CLOSED = 111  # NanoMQ's "not available in this build"
CLIENT_IS_OFFLINE = 112  # no such client
PARAMS_HOCON_FORMAT_ILLEGAL = 117


class ApiError(Exception):
    """Answer the request with HTTP `status` and `{"code": code, "message": message}`."""

    def __init__(self, status: str, code: int, message: str, headers: tuple = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def bad_request(code: int, message: str) -> ApiError:
    return ApiError("400 Bad Request", code, message)


def not_found(code: int, message: str) -> ApiError:
    return ApiError("404 Not Found", code, message)
