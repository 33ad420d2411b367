"""Reports of benchmark results: the accuracy-vs-latency figure (plot.py) and Markdown tables (tables.py).

    from mimkd_edge.report import plot_tradeoff
    paths = plot_tradeoff(rows, "tradeoff.png", paper=True)   # {"png", "svg", "md"}

matplotlib is imported only when a figure is drawn.
"""

from .plot import pareto_front, plot_tradeoff, select_points
from .tables import paper_table, points_table, rows_table

__all__ = ["plot_tradeoff", "select_points", "pareto_front", "points_table", "rows_table", "paper_table"]
