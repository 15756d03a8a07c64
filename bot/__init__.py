"""Timbre Atlas on Telegram: send audio (a file, a voice message, a video note) or ``/similar TEXT`` and get the
most similar tracks of a run, with Spotify and YouTube links and the predicted genre. ``python -m bot``.

``bot.format`` builds the replies (pure functions), ``bot.handlers`` wires them to ``core`` and
python-telegram-bot, ``bot.__main__`` reads the environment and starts long polling.
"""
