"""A diffusers Stable Diffusion (v1 layout) pipeline as one original-layout (LDM) checkpoint: the
`model.diffusion_model.*`, `first_stage_model.*` and `cond_stage_model.transformer.*` keys that
AUTOMATIC1111, Forge and ComfyUI load.

Where the mapping comes from: the diffusers repository's
`scripts/convert_diffusers_to_original_stable_diffusion.py` (https://github.com/huggingface/diffusers,
Apache-2.0 license). That script is not shipped in the diffusers wheel (the wheel only has the other
direction, `diffusers.loaders.single_file_utils.convert_ldm_*_checkpoint`), so its renaming rules are
restated here. They are also generalised: the script hard-codes SD 1.x's four blocks with two layers each
(`input_blocks.{3*i + j + 1}`), which mislabels the studio's small models (two blocks, one layer per
block); here the block indices come from the UNet's and VAE's own configs. The round trip through the
installed diffusers' loader (`from_single_file`) is the check (tests/engines/test_single_file.py).
"""

from __future__ import annotations

import re
from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

# (diffusers, LDM) — inside a UNet ResNet block
_UNET_RESNET = (("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("norm2.", "out_layers.0."),
                ("conv2.", "out_layers.3."), ("time_emb_proj.", "emb_layers.1."),
                ("conv_shortcut.", "skip_connection."))
_UNET_TOP = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
             "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2."}
# (diffusers, LDM) — inside the VAE's mid-block attention (new and older diffusers names)
_VAE_ATTN = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
             ("to_out.0.", "proj_out."), ("query.", "q."), ("key.", "k."), ("value.", "v."),
             ("proj_attn.", "proj_out."))


def _resnet(rest: str) -> str:
    for hf, sd in _UNET_RESNET:
        if rest.startswith(hf):
            return sd + rest[len(hf):]
    return rest


def unet_key(key: str, config: dict[str, Any]) -> str:
    """The LDM name of one diffusers UNet2DConditionModel weight."""
    per = int(config["layers_per_block"]) if isinstance(config["layers_per_block"], int) else None
    if per is None:
        raise ValueError("UNets with a different number of layers per block cannot be exported yet.")
    for hf, sd in _UNET_TOP.items():
        if key.startswith(hf):
            return sd + key[len(hf):]
    m = re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key)
    if m:
        i, part, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = 1 + i * (per + 1) + j
        return f"input_blocks.{index}.0.{_resnet(rest)}" if part == "resnets" else f"input_blocks.{index}.1.{rest}"
    m = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key)
    if m:
        return f"input_blocks.{(int(m[1]) + 1) * (per + 1)}.0.op.{m[2]}"
    m = re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key)
    if m:  # an up block has one layer more than a down block
        i, part, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = i * (per + 1) + j
        return f"output_blocks.{index}.0.{_resnet(rest)}" if part == "resnets" else f"output_blocks.{index}.1.{rest}"
    m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key)
    if m:  # the upsampler follows the last layer's ResNet (and its attention, where the block has one)
        i = int(m[1])
        has_attention = "CrossAttn" in config["up_block_types"][i]
        return f"output_blocks.{i * (per + 1) + per}.{2 if has_attention else 1}.{m[2]}"
    if key.startswith("mid_block.attentions.0."):
        return "middle_block.1." + key[len("mid_block.attentions.0."):]
    m = re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key)
    if m:
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    raise ValueError(f"no original-layout name for the UNet weight '{key}' (not a Stable Diffusion v1 UNet?)")


def vae_key(key: str, config: dict[str, Any]) -> str:
    """The LDM name of one diffusers AutoencoderKL weight."""
    blocks = len(config["block_out_channels"])
    key = key.replace("conv_shortcut.", "nin_shortcut.").replace("conv_norm_out.", "norm_out.")
    m = re.match(r"encoder\.down_blocks\.(\d+)\.(resnets\.(\d+)|downsamplers\.0)\.(.*)", key)
    if m:
        middle = f"block.{m[3]}" if m[3] is not None else "downsample"
        return f"encoder.down.{m[1]}.{middle}.{m[4]}"
    m = re.match(r"decoder\.up_blocks\.(\d+)\.(resnets\.(\d+)|upsamplers\.0)\.(.*)", key)
    if m:  # the decoder's blocks are numbered the other way round
        middle = f"block.{m[3]}" if m[3] is not None else "upsample"
        return f"decoder.up.{blocks - 1 - int(m[1])}.{middle}.{m[4]}"
    m = re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key)
    if m:
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    m = re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key)
    if m:
        rest = m[2]
        for hf, sd in _VAE_ATTN:
            if rest.startswith(hf):
                rest = sd + rest[len(hf):]
                break
        return f"{m[1]}.mid.attn_1.{rest}"
    return key  # conv_in, conv_out, norm_out, quant_conv, post_quant_conv: the same names


def to_ldm(unet: Any, vae: Any, text_encoder: Any, dtype: Any = None) -> dict[str, Any]:
    """One state dict in the original layout (contiguous tensors, cast to `dtype` when given)."""
    out: dict[str, Any] = {}
    for key, value in unet.state_dict().items():
        out[UNET_PREFIX + unet_key(key, unet.config)] = value
    for key, value in vae.state_dict().items():
        name = vae_key(key, vae.config)
        if re.search(r"mid\.attn_1\.(q|k|v|proj_out)\.weight$", name) and value.ndim == 2:
            value = value.reshape(*value.shape, 1, 1)  # LDM's attention projections are 1×1 convolutions
        out[VAE_PREFIX + name] = value
    # transformers >= 5.6 flattened CLIPTextModel (no `text_model.` level); the original layout keeps it
    text = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in text_encoder.state_dict().items()}
    if "text_model.encoder.layers.22.layer_norm2.bias" in text:
        raise ValueError("an OpenCLIP (SD 2.x) text encoder: only Stable Diffusion v1 pipelines can be exported.")
    for key, value in text.items():
        out[TEXT_PREFIX + key] = value
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
            for k, v in out.items()}


def save_checkpoint(pipe: Any, path: Any, dtype: Any, metadata: dict[str, str] | None = None) -> int:
    """Write `pipe`'s UNet, VAE and text encoder as one .safetensors file; returns its tensor count."""
    from safetensors.torch import save_file

    state = to_ldm(pipe.unet, pipe.vae, pipe.text_encoder, dtype)
    save_file(state, str(path), metadata={"format": "pt", **(metadata or {})})
    return len(state)
