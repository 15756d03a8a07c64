"""python-telegram-bot handlers: read the message, hand the work to :class:`bot.replies.Replies` off the event
loop, reply in HTML. A message that fails never stops the bot: expected problems (bad audio, too large) get a
plain reply here, anything else reaches :func:`on_error`, which logs it and tells the user."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Optional

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)

from core.audio import is_audio_path
from core.base import TimbreError
from core.data import safe_name

from . import format as fmt
from .replies import Replies, Reply

log = logging.getLogger("bot")
COMMANDS = (("similar", "tracks like a library track: /similar part of a title"),
            ("genre", "genre of audio: as its caption, or as a reply to it"),
            ("foryou", "tracks new to you, from your likes"),
            ("mydata", "what the bot keeps about this chat"),
            ("forget", "delete what the bot keeps about this chat"),
            ("help", "what this bot does"))


@dataclasses.dataclass(frozen=True)
class Media:
    """Audio in a message: what to download, and how to name it in replies and errors."""

    file_id: str
    file_size: Optional[int]
    name: str  # a file name (its extension is only a hint: the decoder goes by the content)
    query: str  # how the reply refers to it


def media_of(message: Message) -> Optional[Media]:
    """The audio of ``message`` (audio file, voice message, video note, video, or a document that is audio by
    MIME type or extension); None when it carries none."""
    if message.audio:
        a = message.audio
        name = safe_name(a.file_name, default="audio")
        tagged = " - ".join(x for x in (a.performer, a.title) if x)
        return Media(a.file_id, a.file_size, name, tagged or name)
    if message.voice:
        return Media(message.voice.file_id, message.voice.file_size, "voice message.ogg", "your voice message")
    if message.video_note:
        v = message.video_note
        return Media(v.file_id, v.file_size, "video note.mp4", "your video note")
    if message.video:
        v = message.video
        name = safe_name(v.file_name, default="video.mp4")
        return Media(v.file_id, v.file_size, name, name)
    d = message.document
    if d and ((d.mime_type or "").startswith(("audio/", "video/")) or is_audio_path(d.file_name or "")):
        name = safe_name(d.file_name, default="document")
        return Media(d.file_id, d.file_size, name, name)
    return None


async def reply(message: Message, text: str | Reply) -> None:
    """Answer ``message`` in HTML, quoting it, without link previews (ten links would each want one); a
    :class:`Reply` listing tracks gets 👍 / 👎 buttons for each."""
    markup = None
    if isinstance(text, Reply):
        if text.tracks is not None and len(text.tracks):
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                           for row in fmt.feedback_keyboard(text.tracks)])
        text = text.text
    await message.reply_text(text, parse_mode=ParseMode.HTML, do_quote=True, reply_markup=markup,
                             link_preview_options=LinkPreviewOptions(is_disabled=True))


def chat_of(update: Update) -> str:
    return str(update.effective_chat.id)


@dataclasses.dataclass
class BotData:
    """The application's ``bot_data`` (python-telegram-bot makes it empty; :func:`build_application` fills it)."""

    replies: Optional[Replies] = None


Context = CallbackContext[ExtBot, dict, dict, BotData]  # what every handler receives


def replies_of(context: Context) -> Replies:
    return context.bot_data.replies


async def answer_media(message: Message, media: Media, context: Context, *, genre_first: bool = False) -> None:
    """Check the size Telegram reports, download, recommend (in a worker thread), reply to ``message``."""
    replies, started = replies_of(context), time.perf_counter()
    try:
        replies.check_size(media.name, media.file_size)
        await message.reply_chat_action(ChatAction.TYPING)
        file = await context.bot.get_file(media.file_id)
        data = bytes(await file.download_as_bytearray())
        text = await asyncio.to_thread(replies.audio, data, media.name, query=media.query, genre_first=genre_first,
                                       chat=str(message.chat_id))
        log.info("%s (%.2f MB) answered in %.2f s", media.name, len(data) / 2**20, time.perf_counter() - started)
    except TimbreError as error:  # bad audio, too large: the reason, plainly
        text = fmt.refusal(error)
        log.info("%s refused: %s", media.name, error)
    await reply(message, text)


async def on_audio(update: Update, context: Context) -> None:
    message = update.effective_message
    media = media_of(message)
    if media is None:  # a document that is not audio
        name = safe_name(message.document.file_name, default="that file") if message.document else "that"
        await reply(message, fmt.not_audio_message(name))
        return
    caption = (message.caption or "").strip().lower()
    await answer_media(message, media, context, genre_first=caption.startswith("/genre"))


async def on_genre(update: Update, context: Context) -> None:
    """``/genre`` as a reply to a message with audio (as a caption, :func:`on_audio` sees it)."""
    message = update.effective_message
    media = media_of(message.reply_to_message) if message.reply_to_message else None
    if media is None:
        await reply(message, fmt.GENRE_USAGE)
        return
    await answer_media(message, media, context, genre_first=True)


async def on_similar(update: Update, context: Context) -> None:
    text = " ".join(context.args or []).strip()
    if not text:
        await reply(update.effective_message, fmt.SIMILAR_USAGE)
        return
    await reply(update.effective_message, await asyncio.to_thread(replies_of(context).similar, text,
                                                                  chat=chat_of(update)))


async def on_feedback(update: Update, context: Context) -> None:
    """A 👍 / 👎 under an answer: recorded for this chat, acknowledged with a short notice."""
    query = update.callback_query
    parsed = fmt.parse_feedback(query.data)
    if parsed is None:
        await query.answer()
        return
    kind, track_id = parsed
    await query.answer(await asyncio.to_thread(replies_of(context).feedback, chat_of(update), track_id, kind))


async def on_for_you(update: Update, context: Context) -> None:
    await reply(update.effective_message, await asyncio.to_thread(replies_of(context).for_you, chat_of(update)))


async def on_my_data(update: Update, context: Context) -> None:
    await reply(update.effective_message, await asyncio.to_thread(replies_of(context).my_data, chat_of(update)))


async def on_forget(update: Update, context: Context) -> None:
    await reply(update.effective_message, await asyncio.to_thread(replies_of(context).forget, chat_of(update)))


async def on_help(update: Update, context: Context) -> None:
    await reply(update.effective_message, replies_of(context).help())


async def on_other(update: Update, context: Context) -> None:
    await reply(update.effective_message, fmt.HINT)


async def on_error(update: object, context: Context) -> None:
    """Log what went wrong and tell the user; the next update is handled as usual."""
    log.error("update %s failed", getattr(update, "update_id", "?"), exc_info=context.error)
    message = update.effective_message if isinstance(update, Update) else None
    if message is None:
        return
    error = context.error
    detail = error.message if isinstance(error, TelegramError) else type(error).__name__
    try:
        await reply(message, fmt.failure_message(detail, from_telegram=isinstance(error, TelegramError)))
    except TelegramError:
        log.exception("could not tell the user about the failure either")


async def _post_init(application: Application) -> None:
    """Offer the commands in Telegram's menu (best effort: a refusal is logged, not fatal)."""
    try:
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
    except TelegramError as error:
        log.warning("could not set the command menu: %s", error)


def build_application(replies: Replies, *, token: str, api_url: Optional[str] = None) -> Application:
    """The bot answering with ``replies``: Telegram's cloud Bot API, or the server at ``api_url``
    (``http://host:8081``, a self-hosted telegram-bot-api) for both methods and file downloads."""
    builder = (ApplicationBuilder().token(token).context_types(ContextTypes(bot_data=BotData))
               .post_init(_post_init).concurrent_updates(replies.config.workers))
    if api_url:
        root = api_url.rstrip("/")
        builder = builder.base_url(f"{root}/bot").base_file_url(f"{root}/file/bot")
    if replies.config.local_mode:
        builder = builder.local_mode(True)
    application = builder.build()
    application.bot_data.replies = replies
    application.add_handler(CommandHandler(("start", "help"), on_help))
    application.add_handler(CommandHandler("similar", on_similar))
    application.add_handler(CommandHandler("genre", on_genre))
    application.add_handler(CommandHandler("foryou", on_for_you))
    application.add_handler(CommandHandler("mydata", on_my_data))
    application.add_handler(CommandHandler("forget", on_forget))
    application.add_handler(CallbackQueryHandler(on_feedback))
    application.add_handler(MessageHandler(filters.AUDIO | filters.VOICE | filters.VIDEO_NOTE | filters.VIDEO
                                           | filters.Document.ALL, on_audio))
    application.add_handler(MessageHandler(filters.ALL, on_other))
    application.add_error_handler(on_error)
    return application
