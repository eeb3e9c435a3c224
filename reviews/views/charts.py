"""Charts: inline SVG drawn on the server, for the case page and the dashboard; they read no model."""

from datetime import timedelta

from django.utils.html import format_html, format_html_join

# --- charts: inline SVG drawn on the server ------------------------------------------------------

BLUE, GREY, RED, GREEN, AMBER = "#1d5fbf", "#9aa6b6", "#a61b1b", "#1d6b34", "#b7791f"


def _join(parts):
    """Join already-escaped SVG fragments."""
    return format_html_join("", "{}", ((p,) for p in parts))


def _svg(width, height, body, title):
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" preserveAspectRatio="xMinYMin meet">'
        "<title>{}</title>{}</svg>",
        width,
        height,
        title,
        title,
        body,
    )


def _nice(value):
    """A round axis maximum at or above ``value`` (4, 8, 10, 20, 50, 100, ...), so ticks are whole."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _hbars(rows, *, title, width=640, label_w=170, note_w=90, value_fmt=None, max_value=None, marker=None):
    """Horizontal stacked bars: ``rows`` are ``(label, [(value, colour)], note)``."""
    bar_h, gap, top = 18, 10, 8
    height = top + len(rows) * (bar_h + gap) + 22
    plot_w = width - label_w - note_w
    top_value = max_value or _nice(max((sum(v for v, _ in segs) for _, segs, _ in rows), default=0))
    value_fmt = value_fmt or (lambda v: f"{v:g}")
    parts = []
    for i in range(5):
        x = label_w + plot_w * i / 4
        parts.append(format_html('<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>', x, top, x, height - 20))
        parts.append(
            format_html(
                '<text class="muted" x="{}" y="{}" text-anchor="middle">{}</text>',
                x,
                height - 6,
                value_fmt(top_value * i / 4),
            )
        )
    if marker is not None:
        x = label_w + plot_w * min(marker / top_value, 1)
        parts.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2" stroke-dasharray="4 3"/>',
                x,
                top - 4,
                x,
                height - 20,
                GREEN,
            )
        )
    for i, (label, segs, note) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(format_html('<text x="{}" y="{}" text-anchor="end">{}</text>', label_w - 8, y + bar_h - 4, label))
        x = label_w
        for value, colour in segs:
            w = plot_w * min(value / top_value, 1) if value else 0
            if w:
                parts.append(
                    format_html(
                        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" rx="2"/>',
                        x,
                        y,
                        round(w, 1),
                        bar_h,
                        colour,
                    )
                )
            x += w
        parts.append(format_html('<text x="{}" y="{}">{}</text>', x + 6, y + bar_h - 4, note))
    return _svg(width, height, _join(parts), title)


def queue_chart(queues):
    rows = []
    for q in queues:
        note = f"{q.get('depth') or 0} waiting, {q.get('in_review') or 0} in review"
        if q.get("breaching"):
            note += f", {q['breaching']} late"
        if q.get("forecast"):
            note += f" · {q['forecast']}"
        breaching = min(q.get("breaching") or 0, q.get("depth") or 0)
        rows.append(
            (
                q.get("name") or q.get("slug"),
                [(breaching, RED), ((q.get("depth") or 0) - breaching, BLUE), (q.get("in_review") or 0, GREY)],
                note,
            )
        )
    return _hbars(rows, title="Queue depth: past SLA, waiting and in review", width=860, label_w=230, note_w=290)


def sla_chart(classes):
    rows = []
    for c in classes:
        pct = c.get("sla_pct")
        colour = GREEN if pct is not None and pct >= 95 else AMBER if pct is not None and pct >= 80 else RED
        note = "no decisions yet" if pct is None else f"{pct}%"
        rows.append((c.get("name") or c["slug"], [(pct or 0, colour)], note))
    return _hbars(
        rows,
        title="SLA compliance by threat class (target 95%)",
        label_w=220,
        max_value=100,
        marker=95,
        value_fmt=lambda v: f"{v:.0f}%",
    )


def source_chart(sources):
    rows = []
    for s in sources:
        current = s.current_rate or 0
        baseline = s.baseline_rate
        colour = {"healthy": BLUE, "suspect": AMBER, "quarantined": RED}.get(s.status, GREY)
        note = (
            f"{current:.1f}/h"
            + (f" (baseline {baseline:.1f}/h)" if baseline is not None else "")
            + f" · {s.get_status_display().lower()}"
            + (f", {s.held} held" if s.held else "")
        )
        rows.append((s.name or s.slug, [(current, colour)], note))
    return _hbars(rows, title="Signal rate by source, last hour", width=760, label_w=170, note_w=230)


def series_chart(series):
    """Columns per day: cases created, the part acted on within SLA in green, late in amber."""
    top = _nice(max((d.get("created", 0) for d in series), default=0))
    width, height, left, bottom = 720, 190, 40, 24
    plot_h = height - bottom - 10
    col_w = (width - left - 10) / max(len(series), 1)
    parts = []
    for i in range(3):
        y = 10 + plot_h * i / 2
        parts.append(format_html('<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>', left, y, width - 10, y))
        parts.append(
            format_html(
                '<text class="muted" x="{}" y="{}" text-anchor="end">{}</text>',
                left - 4,
                y + 4,
                round(top * (1 - i / 2)),
            )
        )
    for i, day in enumerate(series):
        created, acted, met = day.get("created", 0), day.get("acted", 0), day.get("within_sla", 0)
        x = left + i * col_w + 3
        y = 10 + plot_h
        for value, colour in ((met, GREEN), (acted - met, AMBER), (created - acted, GREY)):
            if value > 0:
                bar = plot_h * value / top
                y -= bar
                parts.append(
                    format_html(
                        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                        round(x, 1),
                        round(y, 1),
                        round(col_w - 6, 1),
                        round(bar, 1),
                        colour,
                    )
                )
        parts.append(
            format_html(
                '<rect x="{}" y="10" width="{}" height="{}" fill="transparent">'
                "<title>{}: {} created, {} acted, {} within SLA</title></rect>",
                round(x, 1),
                round(col_w - 6, 1),
                plot_h,
                day.get("date"),
                created,
                acted,
                met,
            )
        )
        if i % 2 == 0:
            parts.append(
                format_html(
                    '<text class="muted" x="{}" y="{}" text-anchor="middle">{}</text>',
                    round(x + (col_w - 6) / 2, 1),
                    height - 6,
                    (day.get("date") or "")[5:],
                )
            )
    return _svg(width, height, _join(parts), "Cases created per day, and how many were acted on within SLA")


def sparkline(hourly, now):
    """Signals on this case per hour over the last 24 hours, as a small column chart."""
    counts = {row["hour"]: row["n"] for row in hourly}
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    values = [counts.get(start + timedelta(hours=i), 0) for i in range(24)]
    top = max(values) or 1
    width, height = 240, 40
    col = width / 24
    body = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#5b7db1"/>',
        (
            (
                round(i * col + 1, 1),
                round(height - 2 - (height - 4) * v / top, 1),
                round(col - 2, 1),
                round((height - 4) * v / top, 1),
            )
            for i, v in enumerate(values)
            if v
        ),
    )
    body = format_html('<line x1="0" y1="{}" x2="{}" y2="{}" class="axis"/>{}', height - 1, width, height - 1, body)
    return _svg(width, height, body, f"Signals per hour, last 24 hours: peak {max(values)}")
