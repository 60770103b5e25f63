"""Reading what a caller sent: the path, query parameters, paging and a bounded JSON body.

Every way a request can be wrong ends in an `ApiError` with NanoMQ's code and a message
that says what to fix; nothing here lets a malformed request become a 500.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from .errors import (
    MISSING_KEY_REQUEST_PARAMS, REQ_PARAM_ERROR, REQ_PARAMS_JSON_FORMAT_ILLEGAL, ApiError, bad_request,
)

MAX_BODY_BYTES = 4 * 1024 * 1024  # a publish_batch of a few 1 MB messages, base64 included
MAX_QUERY_FIELDS = 32
MAX_PAGE_LIMIT = 10_000  # EMQX's default and largest `_limit`
DEFAULT_PAGE_LIMIT = MAX_PAGE_LIMIT


def path_segments(environ, root: str) -> list[str]:
    """The path below `root`, split at slashes, empty segments dropped (so a trailing slash
    is allowed, as NanoMQ allows it). PATH_INFO is percent-decoded bytes as latin-1 (PEP
    3333); ids are UTF-8."""
    raw = environ.get("PATH_INFO") or "/"
    try:
        path = raw.encode("latin-1").decode("utf-8")
    except UnicodeError as error:
        raise bad_request(REQ_PARAM_ERROR, "the path is not UTF-8") from error
    rest = path[len(root):]
    return [segment for segment in rest.split("/") if segment]


def query(environ, allowed: frozenset[str]) -> dict[str, str]:
    """The query string as {name: value}; a name outside `allowed`, or one given twice, is
    refused rather than ignored, so a misspelt filter never returns everything."""
    text = environ.get("QUERY_STRING") or ""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          max_num_fields=MAX_QUERY_FIELDS, errors="strict")
    except (ValueError, UnicodeError) as error:
        raise bad_request(REQ_PARAM_ERROR, f"malformed query string: {error}") from error
    params: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            raise bad_request(REQ_PARAM_ERROR, f"unknown query parameter {name!r}; "
                                               f"known: {', '.join(sorted(allowed))}")
        if name in params:
            raise bad_request(REQ_PARAM_ERROR, f"query parameter {name!r} given twice")
        params[name] = value
    return params


PAGING_PARAMS = frozenset({"_page", "_limit", "page", "limit"})


def paging(params: dict[str, str]) -> tuple[int, int]:
    """(page, limit) from EMQX's `_page`/`_limit` (or `page`/`limit`): page from 1, limit
    from 1 to MAX_PAGE_LIMIT."""
    page = _integer(params, ("_page", "page"), 1, 1, 1_000_000_000)
    limit = _integer(params, ("_limit", "limit"), DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)
    return page, limit


def _integer(params: dict, names: tuple[str, ...], default: int, low: int, high: int) -> int:
    given = [name for name in names if name in params]
    if not given:
        return default
    if len(given) > 1:
        raise bad_request(REQ_PARAM_ERROR, f"give one of {' or '.join(given)}, not both")
    name = given[0]
    value = params[name]
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise bad_request(REQ_PARAM_ERROR, f"{name} must be an integer from {low} to {high}, not {value!r}")
    return int(value)


def integer_param(params: dict, name: str, low: int, high: int) -> int | None:
    if name not in params:
        return None
    return _integer(params, (name,), 0, low, high)


def boolean_param(params: dict, name: str) -> bool | None:
    if name not in params:
        return None
    value = params[name].lower()
    if value not in ("true", "false"):
        raise bad_request(REQ_PARAM_ERROR, f"{name} must be true or false, not {params[name]!r}")
    return value == "true"


def json_body(environ, max_bytes: int = MAX_BODY_BYTES):
    """The request body parsed as JSON. Too large is 413 before it is read (or as soon as
    it overruns, for a chunked body); empty or not JSON is 400 with NanoMQ's code 109."""
    length_header = environ.get("CONTENT_LENGTH") or ""
    too_large = ApiError("413 Payload Too Large", REQ_PARAM_ERROR,
                         f"request body over {max_bytes} bytes")
    if length_header:
        if not length_header.isdigit():
            raise bad_request(REQ_PARAM_ERROR, "Content-Length is not a number")
        if int(length_header) > max_bytes:
            raise too_large
    try:
        data = environ["wsgi.input"].read(max_bytes + 1)
    except (OSError, ValueError) as error:  # e.g. a chunk size that is not hex
        raise bad_request(REQ_PARAM_ERROR, "malformed request body") from error
    if len(data) > max_bytes:
        raise too_large
    if not data.strip():
        raise bad_request(MISSING_KEY_REQUEST_PARAMS, "the request needs a JSON body")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise bad_request(REQ_PARAMS_JSON_FORMAT_ILLEGAL, f"the body is not valid JSON: {error}") from error
