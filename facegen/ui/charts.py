"""Charts the pages draw with Altair (Streamlit's own chart library)."""

from __future__ import annotations

import altair as alt
import pandas as pd

# Streamlit's theme colours a chart's second curve light blue, which all but vanishes on white: these dark,
# distinct colours (Tableau 10, the light ones darkened) keep every curve readable
CURVE_COLOURS = ("#1f77b4", "#d62728", "#2e7d32", "#9467bd", "#8c564b", "#c2185b", "#616161", "#b85c00")


def metrics_chart(frame: pd.DataFrame, x: str, x_title: str, log_scale: bool = False, height: int = 320) -> alt.Chart:
    """Metric curves from `facegen.train.browse.metrics_frame`: raw values faint, smoothed values on top.

    A log axis needs positive values; WGAN critic losses go negative, so those charts get a symmetric log axis,
    which is logarithmic away from 0 and linear near it.
    """
    if log_scale:
        scale = alt.Scale(type="log") if (frame["value"] > 0).all() else alt.Scale(type="symlog")
    else:
        scale = alt.Scale(zero=False)
    base = alt.Chart(frame).encode(
        x=alt.X(f"{x}:Q", title=x_title),
        color=alt.Color("metric:N", title=None, scale=alt.Scale(range=list(CURVE_COLOURS))),
    )
    raw = base.mark_line(opacity=0.25).encode(y=alt.Y("value:Q", scale=scale, title=None))
    smoothed = base.mark_line().encode(
        y=alt.Y("smoothed:Q", scale=scale, title=None),
        tooltip=[
            alt.Tooltip(f"{x}:Q", title=x_title, format=","),
            "metric:N",
            alt.Tooltip("value:Q", format=".4g"),
            alt.Tooltip("smoothed:Q", format=".4g"),
        ],
    )
    return (raw + smoothed).properties(height=height).interactive(bind_y=False)
