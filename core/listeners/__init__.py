"""Listeners and what they do: the SQLite store of plays, likes, dislikes and skips (:mod:`.store`), listening
histories imported from CSV (:mod:`.history`), and the hybrid ranking that blends audio similarity with a
listener's taste and with what other listeners played (:mod:`.taste`, :mod:`.collab`)."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "store": ("Listener", "ListenerStore"),
    "taste": ("TasteConfig",),
})
