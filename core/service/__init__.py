"""The query service under the pages, the API and the bot: recommendations, neighbours, genre, links."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "service": ("QueryService", "QueryAudio", "Answer", "GenreResult", "default_run"),
    "query": ("Recommendation", "check_k", "min_query_seconds", "neighbours_table"),
    "links": ("track_links", "with_links"),
    "listen": ("ListenConfig", "ListenUpdate", "StreamMatcher", "pcm_to_float", "update_record"),
    "listening": ("Personal",),
})
