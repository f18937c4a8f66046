"""Loss curves stay readable: every curve's colour stands out against the white page."""

import pandas as pd

from facegen.ui.charts import metrics_chart


def contrast_with_white(colour: str) -> float:
    """WCAG contrast ratio of an sRGB '#rrggbb' colour against white."""
    channels = [int(colour[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4 for value in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


def test_every_curve_including_loss_g_has_a_colour_that_reads_on_white():
    frame = pd.DataFrame(
        {"step": [1, 2, 1, 2], "metric": ["loss_d", "loss_d", "loss_g", "loss_g"], "value": [1.0, 0.9, 2.0, 2.5]}
    ).assign(smoothed=lambda rows: rows["value"])
    layers = metrics_chart(frame, "step", "Steps").to_dict()["layer"]
    colours = layers[1]["encoding"]["color"]["scale"]["range"]
    assert len(colours) >= 2
    assert all(contrast_with_white(colour) >= 3 for colour in colours), colours
