"""A small fake Telegram Bot API server for end-to-end tests of the bot, with no internet.

It listens on 127.0.0.1 on a free port (stdlib ``ThreadingHTTPServer`` in a thread) and speaks just enough of
the Bot API (https://core.telegram.org/bots/api) for a long-polling bot:

* ``POST /bot<token>/<method>`` with form, JSON or query parameters: ``getMe``, ``deleteWebhook``,
  ``getUpdates`` (scripted updates, Telegram's offset rule: an update is delivered until a later ``offset``
  confirms it; messages and inline-button presses), ``getFile``, ``sendMessage`` (recorded); any other method
  is recorded and answered ``true`` (``sendChatAction``, ``setMyCommands``, ``answerCallbackQuery``, ...). A wrong
  token gets 401, as from Telegram.
* ``GET /file/bot<token>/<file_path>``: the bytes of a file registered with :meth:`FakeTelegram.add_file`.

Usage::

    with FakeTelegram("123:TEST") as tg:
        audio = tg.add_file(data, mime_type="audio/mpeg", file_name="a.mp3")
        msg = tg.add_message(audio=audio)
        ...  # start the bot with TELEGRAM_API_URL=tg.url
        tg.wait_for_replies([msg], timeout=90)
        tg.replies_to(msg)  # the recorded sendMessage parameters
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit

CHAT = {"id": 4242, "type": "private", "first_name": "Test"}
USER = {"id": 4242, "is_bot": False, "first_name": "Test"}
BOT_USER = {"id": 777, "is_bot": True, "first_name": "Timbre Atlas", "username": "timbre_atlas_test_bot"}
LONG_POLL_CAP_S = 0.5  # an empty getUpdates waits at most this long, so stopping the bot is quick


class FakeTelegram:
    """The fake server; a context manager that starts it and always stops it."""

    def __init__(self, token: str):
        self.token = token
        self.updates: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.file_errors: dict[str, tuple[int, str]] = {}
        self.calls: list[tuple[str, dict]] = []  # (method, parameters), every Bot API request in order
        self.downloads: list[str] = []  # file ids served by the file route
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._sent_ids = itertools.count(10_000)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-telegram", daemon=True)

    # ----------------------------------------------------------------------------------- life cycle
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeTelegram":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    # ----------------------------------------------------------------------------------- scripting
    def add_file(self, data: Optional[bytes], *, error: Optional[tuple[int, str]] = None,
                 file_size: Optional[int] = -1, **fields) -> dict:
        """Register a file and return its Bot API object (``file_id``, ``file_unique_id``, ``file_size``,
        plus ``fields`` such as ``mime_type``, ``file_name``, ``duration``), ready for :meth:`add_message`.

        ``error=(400, "Bad Request: file is too big")`` makes ``getFile`` fail as Telegram does; ``file_size``
        overrides the size the update reports (None leaves it out, as Telegram sometimes does).
        """
        file_id = f"file-{next(self._ids)}"
        if data is not None:
            self.files[file_id] = data
        if error is not None:
            self.file_errors[file_id] = error
        size = len(data or b"") if file_size == -1 else file_size
        obj = {"file_id": file_id, "file_unique_id": f"u{file_id}", **fields}
        if size is not None:
            obj["file_size"] = size
        return obj

    def add_message(self, *, text: Optional[str] = None, reply_to: Optional[dict] = None, **content) -> dict:
        """Queue an update with a new message and return the message (for :meth:`replies_to`).

        ``text`` starting with ``/`` carries a ``bot_command`` entity, as Telegram sends it; ``content`` is
        the media: ``audio=``, ``voice=``, ``video_note=``, ``document=`` (objects from :meth:`add_file`),
        ``caption=``.
        """
        update_id = next(self._ids)
        message = {"message_id": update_id, "date": int(time.time()), "chat": CHAT, "from": USER, **content}
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        with self._cond:
            self.updates.append({"update_id": update_id, "message": message})
            self._cond.notify_all()
        return message

    def add_callback(self, data: str, *, chat: Optional[dict] = None) -> dict:
        """Queue an update as a press on an inline button of a bot message (``callback_data`` = ``data``) and
        return the callback query (its ``id`` is what ``answerCallbackQuery`` answers)."""
        update_id = next(self._ids)
        chat = chat or CHAT
        pressed_on = {"message_id": next(self._sent_ids), "date": int(time.time()), "chat": chat, "from": BOT_USER,
                      "text": "an answer with buttons"}
        query = {"id": f"cb-{update_id}", "from": {**USER, "id": chat["id"]}, "message": pressed_on,
                 "chat_instance": f"ci-{chat['id']}", "data": data}
        with self._cond:
            self.updates.append({"update_id": update_id, "callback_query": query})
            self._cond.notify_all()
        return query

    def wait_for_calls(self, method: str, count: int, *, timeout: float) -> list[dict]:
        """Wait until ``method`` was called ``count`` times or ``timeout`` seconds pass; its calls so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.called(method)) < count and time.monotonic() < deadline:
                self._cond.wait(timeout=min(max(deadline - time.monotonic(), 0.01), 1.0))
            return self.called(method)

    # ----------------------------------------------------------------------------------- results
    def called(self, method: str) -> list[dict]:
        with self._cond:
            return [params for name, params in self.calls if name == method]

    def replies_to(self, message: dict) -> list[dict]:
        """``sendMessage`` parameters of the replies (``reply_parameters.message_id``) to ``message``."""
        return [p for p in self.called("sendMessage")
                if (p.get("reply_parameters") or {}).get("message_id") == message["message_id"]]

    def wait_for_replies(self, messages: list[dict], *, timeout: float) -> list[dict]:
        """Wait until each message has a reply or ``timeout`` seconds pass; returns the messages without one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                missing = [m for m in messages if not self.replies_to(m)]
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self._cond.wait(timeout=min(left, 1.0))

    # ----------------------------------------------------------------------------------- the API
    def _api(self, method: str, params: dict):
        """The ``result`` for one Bot API call, or raise :class:`_ApiError`."""
        with self._cond:
            self.calls.append((method, params))
            self._cond.notify_all()
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "getFile":
            return self._get_file(str(params.get("file_id")))
        if method == "sendMessage":
            return {"message_id": next(self._sent_ids), "date": int(time.time()), "chat": CHAT, "from": BOT_USER,
                    "text": params.get("text", "")}
        return True  # deleteWebhook, sendChatAction, setMyCommands, ...

    def _get_updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), LONG_POLL_CAP_S)
        with self._cond:
            self._cond.wait_for(lambda: any(u["update_id"] >= offset for u in self.updates), timeout=wait)
            return [u for u in self.updates if u["update_id"] >= offset][: int(params.get("limit") or 100)]

    def _get_file(self, file_id: str) -> dict:
        if file_id in self.file_errors:
            raise _ApiError(*self.file_errors[file_id])
        if file_id not in self.files:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(self.files[file_id]),
                "file_path": f"files/{file_id}"}


class _ApiError(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code, self.description = code, description


def _parameters(handler: BaseHTTPRequestHandler, body: bytes) -> dict:
    """Query, form or JSON parameters; form values holding JSON (objects, arrays) are decoded as Telegram does."""
    params = {k: v[-1] for k, v in parse_qs(urlsplit(handler.path).query).items()}
    kind = handler.headers.get("Content-Type", "")
    if kind.startswith("application/json") and body:
        params.update(json.loads(body))
    elif body:
        params.update({k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()})
    for key, value in params.items():
        if isinstance(value, str) and value[:1] in "{[":
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass
    return params


def _handler_for(fake: FakeTelegram):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the test prints what it needs
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: dict) -> None:
            self._send(status, json.dumps(payload).encode())

        def _route(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = unquote(urlsplit(self.path).path).split("/")  # clients may send the token's ":" as %3A
            if len(parts) >= 3 and parts[1] == f"bot{fake.token}":
                self._method(parts[2], _parameters(self, body))
            elif len(parts) >= 4 and parts[1] == "file" and parts[2] == f"bot{fake.token}":
                self._file("/".join(parts[3:]))
            elif parts[1].startswith("bot") or parts[1:2] == ["file"]:
                self._json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            else:
                self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})

        def _method(self, method: str, params: dict) -> None:
            try:
                self._json(200, {"ok": True, "result": fake._api(method, params)})
            except _ApiError as error:
                self._json(error.code, {"ok": False, "error_code": error.code, "description": error.description})

        def _file(self, file_path: str) -> None:
            file_id = file_path.removeprefix("files/")
            if file_id not in fake.files:
                self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                return
            with fake._cond:
                fake.downloads.append(file_id)
            self._send(200, fake.files[file_id], "application/octet-stream")

        do_GET = do_POST = _route

    return Handler
