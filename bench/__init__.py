"""Load benchmark: the real bot process against a fake Discord and a fake Images API (``python -m bench``).

``bench.imagesapi`` runs the fake Images API in a process of its own; ``bench.run`` starts the fake
Discord, the bot, drives the jobs and collects what both fakes recorded; ``bench.metrics`` turns the
records into the figures; ``bench.report`` prints them and writes the JSON.
"""
