"""Reading a receiver's answer: the status, whether the connection can carry the next POST,
and every byte of the body consumed (a body left unread would corrupt the next answer)."""

import pytest

from appliance.webhook.response import BadResponse, read_response


def feeder(*chunks: bytes):
    """`recv` handing out the given pieces, then EOF."""
    pieces = list(chunks)
    return lambda _size: pieces.pop(0) if pieces else b""


def test_content_length_body_is_consumed_and_the_connection_kept():
    recv = feeder(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", b"lo")
    response = read_response(recv)
    assert (response.status, response.keep_alive) == (200, True)
    assert recv(1) == b""  # nothing left behind


def test_no_content_has_no_body_even_split_across_reads():
    response = read_response(feeder(b"HTTP/1.1 20", b"4 No Content\r\nServer: x\r", b"\n\r\n"))
    assert (response.status, response.keep_alive) == (204, True)


def test_chunked_body_with_trailers_is_consumed():
    recv = feeder(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab", b"cd\r\n3;x=y\r\nefg\r\n0\r\n",
                  b"X-Trailer: 1\r\n\r\n")
    assert read_response(recv).keep_alive


def test_connection_close_and_http_1_0_are_not_reused():
    assert not read_response(feeder(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")).keep_alive
    assert not read_response(feeder(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")).keep_alive
    assert read_response(feeder(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")).keep_alive


def test_a_body_without_length_runs_to_close_and_the_connection_is_dropped():
    response = read_response(feeder(b"HTTP/1.1 500 Oops\r\n\r\n"))
    assert (response.status, response.keep_alive) == (500, False)


def test_interim_100_continue_is_skipped():
    response = read_response(feeder(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"))
    assert response.status == 201


def test_retry_after_seconds_are_read_and_dates_ignored():
    assert read_response(feeder(b"HTTP/1.1 429 Slow\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n")).retry_after == 7
    assert read_response(feeder(b"HTTP/1.1 503 No\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
                                b"Content-Length: 0\r\n\r\n")).retry_after is None


def test_extra_bytes_after_the_response_make_the_connection_unusable():
    assert not read_response(feeder(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200")).keep_alive


@pytest.mark.parametrize("raw", [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", b"SSH-2.0-OpenSSH\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"])
def test_truncated_or_foreign_answers_are_errors(raw):
    with pytest.raises(BadResponse):
        read_response(feeder(raw))


def test_a_body_beyond_the_drain_cap_is_not_read_and_the_connection_is_dropped():
    from appliance.webhook.response import MAX_DRAIN

    reads = []

    def recv(size):
        reads.append(size)
        if len(reads) == 1:
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (48 * 1024 * 1024)
        return b"x" * size

    response = read_response(recv)
    assert (response.status, response.keep_alive) == (200, False)
    assert len(reads) == 1  # not one byte of the 48 MB asked for
    chunk = b"%x\r\n%s\r\n" % (MAX_DRAIN // 2, b"y" * (MAX_DRAIN // 2))
    endless = feeder(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", *[chunk] * 10)
    response = read_response(endless)
    assert (response.status, response.keep_alive) == (200, False)
    assert endless(1)  # most of it left unread


def test_keep_alive_answers_split_byte_by_byte_are_read():
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    response = read_response(feeder(*[raw[i:i + 1] for i in range(len(raw))]))
    assert (response.status, response.keep_alive) == (200, True)
