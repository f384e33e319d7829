"""Everything needed to try or test the bot without accounts: the built-in Images API (``images/``, real
pictures with partial frames) and a local Discord (``discord/``: REST, gateway and CDN) that the
unmodified bot runs against."""
