"""AIGC Studio: generate, fine-tune and rate text, image and speech models in one place."""

__version__ = "0.1.0"
