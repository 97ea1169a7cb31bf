"""Markdown tables: one helper for the EDA report, the model card, the benchmark and
multi-task reports."""


def markdown_table(header, rows, compact=False):
    """A Markdown table as text, without a final newline: the header, the rule (``| --- |``
    per column, or ``|---|`` when ``compact``) and one line per row; cells go through ``str``."""

    def line(cells):
        return "| " + " | ".join(str(cell) for cell in cells) + " |"

    rule = "|" + ("---|" * len(header) if compact else "|".join(" --- " for _ in header) + "|")
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
