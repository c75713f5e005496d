"""rapport package."""
