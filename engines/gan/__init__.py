"""DCGAN: the networks, the `gan` trainer, generation (seeds, latent walks, GIFs), a quality score
that needs no downloaded weights, and a procedural demo dataset.

- ``model``      — GanConfig, Generator, Discriminator, the paper's init, load_generator
- ``train``      — job kind `gan` (``python -m engines.gan.train --run-dir DIR``)
- ``train_data`` — the trainer's images, read once, and each step's seeded batch and noise
- ``generate``   — GanEngine: images from seeds, latent walks (slerp), GIFs
- ``quality``    — KID in a fixed random-feature space + diversity / mode-collapse check
- ``demo_data``  — the demo dataset: seeded images of the shapes world (engines.shapes)

Importing this package is cheap: torch is imported by the submodules that need it.
"""
