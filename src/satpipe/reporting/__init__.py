"""Plotly figures and HTML reports; pure functions of stage outputs."""
