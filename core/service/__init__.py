"""The query service under the pages, the API and the bot: recommendations, neighbours, genre, links."""
