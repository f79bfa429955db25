"""A Lighter-compatible simulated exchange that the real lighter-sdk trades against.

Run it with `python -m lighter_sim` (see `__main__.py`). It imports nothing else from
`hedge_strategy`: the bot only ever talks to it over HTTP and WebSocket, as it would to Lighter.
"""
