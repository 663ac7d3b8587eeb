"""The HTTP/1.1 protocol ``batchcast serve`` speaks: uvicorn's httptools protocol, with two limits it lacks.

uvicorn bounds neither with httptools (its ``h11_max_incomplete_event_size``
applies to h11 only, and httptools has no setting of its own): the parser
buffers a header of any size (four 64 MB headers took the server from 236
to 502 MB), and the keep-alive timer stops at a request's first byte, so a
client that connects and sends nothing, or trickles its request
(slowloris), holds a connection for ever. Here:

- a request line and headers over ``max_head`` bytes get a 431 and the
  connection is closed, as soon as that many bytes of an unfinished head
  have arrived (so at most that and one read are buffered) or when a
  finished one is counted;
- a request must have arrived whole, line, headers and body, within
  ``deadline`` seconds of the connection opening or of the previous
  response ending; past that, the connection is closed, with a 408 if part
  of a request had arrived and no response was under way. Making the
  response has no deadline.

uvicorn's ``timeout_keep_alive`` still closes a connection idle after a response.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class TooLarge(Exception):
    """Raised inside the parser's callback to stop it at a head over the limit."""


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on a request's head and a deadline for receiving a request."""

    def __init__(self, config, server_state, app_state, _loop=None, *, max_head: int, deadline: float):
        super().__init__(config, server_state, app_state, _loop)
        self.max_head, self.deadline = max_head, deadline
        self._head: int | None = 0  # bytes received of the head under way; None while a body is read
        self._timer: asyncio.TimerHandle | None = None
        self._too_large = False

    # -- the deadline --------------------------------------------------------

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head = 0
        if self.cycle.response_complete:
            self._arm()  # answered before its body ended (a 413): the next request's time starts now
        else:
            self._disarm()  # received whole: making the response has no deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's time starts now

    def _arm(self) -> None:
        self._disarm()
        self._timer = self.loop.call_later(self.deadline, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        cycle = self.cycle
        if self.transport.is_closing() or (cycle is not None and not cycle.more_body
                                           and not cycle.response_complete):
            return  # a request that arrived whole (one pipelined behind another) is being answered
        idle = self._head == 0 and (cycle is None or cycle.response_complete)
        if idle or (cycle is not None and cycle.response_started and not cycle.response_complete):
            self.transport.close()  # no request begun (as nginx, no answer); or answered before its body arrived
        else:
            self._refuse(408, f"the request did not arrive whole within {self.deadline:g} s",
                         "send the whole request at once, or raise [serve] request_timeout")

    # -- the head's size -----------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._head is not None:
            self._head += len(data)
        super().data_received(data)  # a TooLarge raised in a callback comes back through send_400_response
        if self._head is not None and self._head > self.max_head and not self.transport.is_closing():
            self._refuse_head()  # unfinished past the limit: stop reading it

    def on_headers_complete(self) -> None:
        self._head = None
        if len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) > self.max_head:
            self._too_large = True
            raise TooLarge  # before uvicorn starts the application on it
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self._refuse(431, f"the request's line and headers are over the limit of {self.max_head} bytes",
                     "send smaller headers, or raise [serve] max_header")

    def _refuse(self, status: int, message: str, fix: str) -> None:
        """Answer ``status`` with one line and its fix, as the application answers its 4xx, and close."""
        body = json.dumps({"error": message, "fix": fix}).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                    % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()
