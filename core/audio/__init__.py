"""Audio in: decoding any file to mono float32, log-mels and classic audio features, microphone frames."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "decode": ("AUDIO_EXTENSIONS", "is_audio_path", "load_audio", "audio_info"),
    "features": ("MelParams", "log_mel", "audio_features"),
    "live": ("MAX_RECORD_SECONDS", "IDLE_LIMIT_SECONDS", "MicRecording", "RecordingProgress", "meter_fraction",
             "pull_frames"),
})
