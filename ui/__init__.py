"""The dashboard's presentation layer: charts (figures), session state, shared widgets and forms, the router's
helpers and the WebRTC glue. Pages import it; core/, api/ and bot/ never do."""
