"""The playground: the whole bot in a browser, with no Discord application and no API key.

``python -m bot playground`` starts the local Discord (``bot.demo.discord``), the built-in image service
(``bot.demo.images``, unless ``OPENAI_API_KEY`` is set) and the real bot as a subprocess pointed at them, and
serves one page that behaves like a Discord channel: ``server`` (HTTP routes, WebSocket), ``live`` (what each
person sees, pushed as it changes), ``actions`` (what people do, turned into what Discord would send the bot),
``botproc`` (the bot process), ``cli`` (the command line) and ``static/`` (the page: vanilla JS and CSS).
"""
