"""The browser microphone: streamlit-webrtc's streamer set up for music, and the aioice patch that lets it
connect over loopback. What arrives is handed to :class:`core.audio.live.MicRecording` (pure numpy, no WebRTC)."""
from __future__ import annotations

import ipaddress
import time
from typing import Callable

from streamlit import config
from streamlit_webrtc import WebRtcMode, webrtc_streamer

# Music, not a phone call: the browser's voice processing would gate, pump and filter it.
MIC_CONSTRAINTS = {"audio": {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": False},
                   "video": False}
RECEIVER_FRAMES = 1024  # about 20 s of 20 ms frames queued while the page redraws

_ice_loopback_only = False


def is_loopback_host(address: str | None) -> bool:
    """Whether a server bound to ``address`` can only be reached from this machine (127.0.0.0/8, ::1, localhost)."""
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return address.lower() == "localhost"


def use_loopback_ice(*, only: bool = False) -> None:
    """Make the WebRTC server offer 127.0.0.1 as an ICE candidate where it is needed.

    ``aioice`` (under ``streamlit_webrtc``) never offers loopback addresses. On a machine with no network but
    ``lo`` the browser and the app, both on that machine, would then find no candidate pair and the microphone
    would never connect, so 127.0.0.1 is added when no other IPv4 address exists. With ``only=True`` (the app is
    served on a loopback address, so the browser is on this machine) 127.0.0.1 is the only candidate and the
    audio never leaves loopback (a browser's own host candidates reach it locally). Where the browser has only
    ``lo`` it must offer loopback too (Chromium: ``--allow-loopback-in-peer-connection``). Patches ``aioice`` once
    per process; the last call's ``only`` holds.

    Parameters
    ----------
    only : bool
        Offer nothing but 127.0.0.1.
    """
    global _ice_loopback_only
    from aioice import ice

    _ice_loopback_only = only
    if getattr(ice.get_host_addresses, "_timbre_loopback", False):
        return
    original = ice.get_host_addresses

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if _ice_loopback_only:
            return ["127.0.0.1"] if use_ipv4 else []
        addresses = original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        if use_ipv4 and not any("." in address for address in addresses):
            addresses.append("127.0.0.1")
        return addresses

    host_addresses._timbre_loopback = True
    ice.get_host_addresses = host_addresses


def mic_streamer(*, key: str, on_change: Callable[[], None]):
    """A send-only microphone stream with Start recording / Stop buttons; returns its WebRTC context.

    When the app is served on a loopback address the stream is kept on loopback (:func:`use_loopback_ice`).
    """
    use_loopback_ice(only=is_loopback_host(config.get_option("server.address")))
    return webrtc_streamer(key=key, mode=WebRtcMode.SENDONLY, rtc_configuration={"iceServers": []},
                           media_stream_constraints=MIC_CONSTRAINTS, audio_receiver_size=RECEIVER_FRAMES,
                           on_change=on_change, translations={"start": "Start recording", "stop": "Stop"})


def frames_from(context) -> Callable[[float], list]:
    """``get_frames(timeout)`` over the stream's receiver (empty while it is still connecting), as
    :func:`core.audio.live.pull_frames` takes it."""
    def get_frames(timeout: float) -> list:
        receiver = context.audio_receiver
        if receiver is None:
            time.sleep(timeout)
            return []
        return receiver.get_frames(timeout=timeout)
    return get_frames
