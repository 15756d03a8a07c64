"""Timbre Atlas on Telegram: send audio (a file, a voice message, a video note) or ``/similar TEXT`` and get the
most similar tracks of a run, with Spotify and YouTube links and the predicted genre. ``python -m bot``.

``bot.format`` writes the replies (pure functions), ``bot.replies`` answers each kind of message through the
query service of ``core`` (:class:`core.service.service.QueryService`), ``bot.handlers`` wires them to
python-telegram-bot with a typed context, ``bot.__main__`` reads the environment and starts long polling.
"""
