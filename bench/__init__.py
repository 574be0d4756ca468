"""rnnbench: train the same recurrent model in several frameworks and measure what each costs.

This package is framework-agnostic: it never imports TensorFlow, Keras or PyTorch at module
level. Adapters (the `adapters` package) are loaded by name inside each case's own process.
"""

__version__ = "0.1.0"
