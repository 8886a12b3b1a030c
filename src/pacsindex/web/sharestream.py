"""The response that sends a share's bytes (a zip, a range of it, or one file): read in worker threads
while the previous piece is being sent, stopped when the client hangs up or stops reading for
`stall_s` (its place among the streams is given back), and reporting how it ended, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from pacsindex.errors import PacsIndexError
from pacsindex.share.download import CHUNK

__all__ = ["ShareStream"]

log = logging.getLogger(__name__)


class ShareStream(StreamingResponse):
    """Sends `chunks` (read in worker threads, so the server keeps answering), then calls
    `on_close(bytes_sent, complete)` however the transfer ended: done, cut by the client, or stopped by a
    file that changed (then the connection is closed early, so the client sees a broken download rather
    than a wrong one)."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        on_close: Callable[[int, bool, bool], None],
        headers: dict[str, str],
        media_type: str,
        batch: int = CHUNK,
        stall_s: float = 60,
        status_code: int = 200,
        release: Callable[[], None] | None = None,
    ) -> None:
        self._chunks = chunks
        self._release = release
        self._stall_s = stall_s
        self._on_close = on_close
        self._size = int(headers["Content-Length"]) if "Content-Length" in headers else None
        self._gone = False  # the client hung up: what is still "sent" goes nowhere
        self._batch = batch
        self._ahead: asyncio.Future[list[bytes]] | None = None
        super().__init__(self._pull(), status_code=status_code, headers=headers, media_type=media_type)

    def _take(self) -> list[bytes]:
        """The next pieces, about `batch` bytes of them (one trip to a worker thread for several)."""
        pieces, held = [], 0
        for piece in self._chunks:
            pieces.append(piece)
            held += len(piece)
            if held >= self._batch:
                break
        return pieces

    async def _pull(self) -> AsyncIterator[bytes]:
        # The next pieces are read (and CRC'd) in a worker thread while the ones before are being sent.
        loop = asyncio.get_running_loop()
        self._ahead = loop.run_in_executor(None, self._take)
        while True:
            # Shielded: a cancelled stream must not mark the read as done while its thread still runs
            # the generator, or closing the source below would race it.
            pieces = await asyncio.shield(self._ahead)
            if not pieces:
                self._ahead = None
                return
            self._ahead = loop.run_in_executor(None, self._take)
            for piece in pieces:
                yield piece

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The server drops what is sent after the client hung up, without a word; Starlette cancels the
        # stream only when its listener next runs. Note the hang-up at once, so the stream stops reading
        # the NAS and the access log counts only what went out before it.
        async def watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._gone = True
            return message

        await super().__call__(scope, watched, send)

    async def stream_response(self, send: Send) -> None:
        sent, complete, stalled = 0, False, False
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            async for chunk in self.body_iterator:
                if self._gone:
                    break
                if self._size is not None and sent + len(chunk) >= self._size and self._release:
                    # The client may ask again on the same connection as soon as it has the last byte:
                    # the place must be free by then.
                    self._release()
                # A client that reads nothing leaves the server's send waiting for room in the socket:
                # after stall_s its place goes to someone else (the connection is dropped).
                with anyio.fail_after(self._stall_s):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += len(chunk)
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                complete = True
        except TimeoutError:
            stalled = True
            log.info("a share download stalled after %d bytes: its place is given back", sent)
        except PacsIndexError as exc:  # names the file inside the zip only, never an archive path
            log.warning("a share download stopped after %d bytes: %s", sent, exc)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    if self._ahead is not None:  # let the read in flight finish before closing the source
                        with contextlib.suppress(BaseException):
                            await self._ahead
                    close = getattr(self._chunks, "close", None)
                    if close is not None:
                        await anyio.to_thread.run_sync(close)
                except Exception:  # closing the files must never keep the slot and the log from below
                    log.warning("a share download's files could not be closed cleanly", exc_info=True)
                finally:
                    # A client that has read all Content-Length bytes may hang up before the stream has
                    # noticed it ended (the server then cancels it): that download is whole all the same.
                    whole = complete or (self._size is not None and sent >= self._size)
                    await anyio.to_thread.run_sync(self._on_close, sent, whole, stalled)
