"""``python -m bot [--run RUN]``: the Telegram bot, long polling.

Environment: ``TELEGRAM_BOT_TOKEN`` (required, from @BotFather) and ``TELEGRAM_API_URL`` (optional: the root URL
of a self-hosted Bot API server, e.g. ``http://127.0.0.1:8081``, used for methods and file downloads alike).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from core.base import InvalidQuery, TimbreError, add_dataclass_args, dataclass_from_args
from core.runs import resolve_run
from core.service import check_k

from .replies import BotConfig, Replies

NO_TOKEN = ("TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather in Telegram (/newbot), then start this "
            "with TELEGRAM_BOT_TOKEN=<the token it gives> python -m bot")


def check_start_k(k: int, run) -> None:
    """Refuse at start a ``--k`` that every query would refuse: it must leave a library track's own neighbours."""
    try:
        check_k(k, available=len(run.tracks) - 1, what="other tracks")
    except InvalidQuery as error:
        raise InvalidQuery(f"--k {k}: {error} (run {run.run_id})") from None


def parse_args(argv=None) -> BotConfig:
    parser = argparse.ArgumentParser(prog="python -m bot", description="The Timbre Atlas Telegram bot (long polling).",
                                     epilog="Environment: TELEGRAM_BOT_TOKEN (required), TELEGRAM_API_URL (optional)")
    add_dataclass_args(parser, BotConfig)
    return dataclass_from_args(BotConfig, parser.parse_args(argv))


def main(argv=None) -> int:
    try:
        config = parse_args(argv)  # the settings' bounds: --workers 0 is one line, not a traceback
    except TimbreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    token = os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        print(f"error: {NO_TOKEN}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per poll otherwise
    try:
        run = resolve_run(config.run)
        check_start_k(config.k, run)
        replies = Replies.for_run(run, config)
    except TimbreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    from telegram.error import InvalidToken, TelegramError

    from .handlers import build_application

    api_url = os.environ.get("TELEGRAM_API_URL", "").strip() or None
    application = build_application(replies, token=token, api_url=api_url)
    logging.getLogger("bot").info("run %s (%d tracks), Bot API %s", replies.run.run_id, len(replies.run.tracks),
                                  api_url or "api.telegram.org")
    try:
        application.run_polling()  # until SIGINT / SIGTERM
    except InvalidToken:
        print("error: Telegram refused TELEGRAM_BOT_TOKEN (check it with @BotFather, /token)", file=sys.stderr)
        return 2
    except TelegramError as error:
        print(f"error: the Bot API could not be reached or refused to start: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
