"""Detection core: features, the PyTorch model, bundles, inference, metrics and training.

Never imports Textual (tests/test_layout.py enforces it).
"""
