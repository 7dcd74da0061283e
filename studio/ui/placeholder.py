"""What a tab whose capability has not landed yet shows: what it will do, never an error."""

import gradio as gr

PLANNED = {
    "Text": "Generate text with GPT-2 (or any causal LM), apply LoRA adapters, stream tokens, rate outputs.",
    "Image": "Generate images with Stable Diffusion: seeds, schedulers, LoRAs, PNG info, rate outputs.",
    "GAN": "Generate from a DCGAN you trained in the Training tab, walk its latent space, export it.",
    "Speech": "Turn text into speech with VITS / MMS-TTS voices, long texts included, rate clips.",
    "Feedback": "See which models and adapters people prefer, compare two versions blind, export "
    "ratings for preference training.",
}


def build(name: str) -> None:
    gr.Markdown(f"### {name}\n{PLANNED.get(name, '')}\n\n*This part of the studio is coming soon.*")
