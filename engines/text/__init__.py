"""Text: causal language models (GPT-2 and friends) with optional PEFT adapters."""

from engines.text.generate import TextEngine, TextGenerationRequest, TextGenerationResult

__all__ = ["TextEngine", "TextGenerationRequest", "TextGenerationResult"]
