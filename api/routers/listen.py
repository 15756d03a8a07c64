"""``/runs/{run}/listen``: a WebSocket that names the track while the music plays.

The client connects with ``?rate=48000&channels=1&k=5`` (the PCM it sends: signed 16-bit little-endian,
interleaved), sends binary frames of that audio as it records, and receives JSON: first ``{"type": "ready", ...}``
with the stream's bounds, then ``{"type": "update", ...}`` after each second of audio
(:func:`core.service.listen.update_record`: time into the stream, top-k with scores, map positions, the
identified track id or null). A text frame ``stop`` asks for a last update of what has arrived and closes.
``ready`` says whether the run's landmark fingerprints are used; a run without them gets them built by a
background job (:func:`core.jobs.start_fingerprint_job`) for its next streams.

Bounded per connection in stream seconds (``--listen-seconds``) and so in bytes, in bytes per frame, in seconds
without audio, and in open connections (``--listen-slots``, as the audio slots bound uploads): past a bound the
server sends ``{"type": "error", "detail": ...}`` and closes (1009 too big, 1013 busy, 1008 for bad
parameters, 1000 at the stream's end).
"""
from __future__ import annotations

import asyncio
import threading

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from api.deps import DEFAULT_RUN
from core import jobs
from core.base import QueryError, TimbreError, without_paths
from core.service import ListenConfig, StreamMatcher, pcm_to_float, update_record

router = APIRouter(prefix="/runs/{run}")

MAX_FRAME_BYTES = 1 << 20  # one binary frame: about 5 s of 48 kHz stereo
IDLE_SECONDS = 30.0  # a connection that sends nothing for this long is closed
RATES = (8_000, 192_000)
MAX_CHANNELS = 8


class ListenSlots:
    """At most ``slots`` live streams at once; one more is told the server is busy (never queued: a live
    stream that waits is already behind)."""

    def __init__(self, slots: int):
        self._free = threading.BoundedSemaphore(slots)

    def take(self) -> bool:
        return self._free.acquire(blocking=False)

    def give(self) -> None:
        self._free.release()


async def refuse(socket: WebSocket, detail: str, code: int) -> None:
    await socket.send_json({"type": "error", "detail": detail})
    await socket.close(code=code)


@router.websocket("/listen")
async def listen(socket: WebSocket, run: str, rate: int = 48_000, channels: int = 1, k: int = 5):
    await socket.accept()
    cfg, slots = socket.app.state.config, socket.app.state.listen_slots
    if not (RATES[0] <= rate <= RATES[1]) or not (1 <= channels <= MAX_CHANNELS):
        return await refuse(socket, f"rate must be {RATES[0]}-{RATES[1]} Hz and channels 1-{MAX_CHANNELS} "
                                    f"(got {rate} Hz, {channels})", 1008)
    if not slots.take():
        return await refuse(socket, f"the server already listens to {cfg.listen_slots} streams; try again later", 1013)
    try:
        await stream(socket, run, rate=rate, channels=channels, k=k, max_seconds=cfg.listen_seconds)
    except WebSocketDisconnect:
        pass
    finally:
        slots.give()


async def stream(socket: WebSocket, run_name: str, *, rate: int, channels: int, k: int, max_seconds: float) -> None:
    queries = socket.app.state.service
    try:
        run = queries.run(None if run_name == DEFAULT_RUN else run_name)
        matcher = StreamMatcher(run, sr=rate, config=ListenConfig(k=k))
    except (QueryError, TimbreError) as error:
        return await refuse(socket, without_paths(str(error)), 1008)
    if matcher.fingerprints is None:  # a run trained before them: built in the background, for its next streams
        try:
            jobs.start_fingerprint_job(run.run_id)
        except TimbreError:
            pass  # matched by embedding only, as before
    max_bytes = int(max_seconds * rate) * channels * 2
    await socket.send_json({"type": "ready", "run": run.run_id, "rate": rate, "channels": channels, "format": "s16le",
                            "update_seconds": matcher.config.update_seconds,
                            "fingerprints": matcher.fingerprints is not None, "max_seconds": max_seconds,
                            "max_bytes": max_bytes, "max_frame_bytes": MAX_FRAME_BYTES})
    received = 0
    while True:
        try:
            message = await asyncio.wait_for(socket.receive(), timeout=IDLE_SECONDS)
        except asyncio.TimeoutError:
            return await refuse(socket, f"no audio for {IDLE_SECONDS:g} s", 1000)
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None:  # text: "stop" ends the stream with a last update
            if matcher.total > matcher.last_update or matcher.resampler is not None:
                await send_update(socket, run, await run_in_threadpool(matcher.finish))
            return await socket.close(code=1000)
        received += len(data)
        if len(data) > MAX_FRAME_BYTES or received > max_bytes:
            return await refuse(socket, f"stream too long: at most {max_seconds:g} s ({max_bytes} bytes) per "
                                        f"connection and {MAX_FRAME_BYTES} bytes per frame", 1009)
        try:
            update = await run_in_threadpool(matcher.feed, pcm_to_float(data, channels=channels))
        except TimbreError as error:
            return await refuse(socket, without_paths(str(error)), 1008)
        if update is not None:
            await send_update(socket, run, update)


async def send_update(socket: WebSocket, run, update) -> None:
    await socket.send_json({"type": "update", **update_record(run, update)})
