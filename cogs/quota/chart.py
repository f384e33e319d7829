"""The words and numbers of the ``/quota report`` chart (``bot/imaging/chart.py`` draws it)."""

from __future__ import annotations

from bot.imaging.chart import TOP_MEMBERS, ChartData, ChartText
from bot.messages.i18n import translate
from bot.quota import Report

__all__ = ["TOP_MEMBERS", "chart_content"]


def chart_content(report: Report, names: dict[int, str], locale: str | None = None) -> tuple[ChartData, ChartText]:
    """What the chart shows, labelled in the reader's language; ``names``: display names by user id."""
    days = [(str(d.day.day), d.images, d.spent_usd) for d in report.daily]
    members = [
        (names.get(u.user_id, str(u.user_id)), u.images, u.spent_usd) for u in report.users[:TOP_MEMBERS] if u.images
    ]
    month = report.period_start.strftime("%Y-%m")
    text = ChartText(
        title=translate(locale, "Images and spend per day, {month}", month=month),
        images=translate(locale, "Images"),
        spend=translate(locale, "Spend (USD)"),
        top=translate(locale, "Top members"),
        nothing=translate(locale, "No images this month yet."),
    )
    return ChartData(days, members), text
