"""Interaction events of a recording (clicks, keys, scrolls, text, custom), stored as SQL rows."""
