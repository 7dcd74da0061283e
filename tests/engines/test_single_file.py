"""The diffusers → original (LDM) key mapping on the full Stable Diffusion 1.x architecture (4 blocks,
2 layers each; built on the meta device, so no weights are allocated): every name lands where the
original checkpoints have it, and diffusers' own loader-side converters map each one straight back."""

from __future__ import annotations

import pytest

from engines.image.single_file import UNET_PREFIX, VAE_PREFIX, unet_key, vae_key


@pytest.fixture(scope="module")
def sd15():
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel

    with init_empty_weights():  # the SD 1.x defaults of both classes
        unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    return unet, vae


def test_unet_names_are_the_original_ones_and_convert_back(sd15):
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    unet, _ = sd15
    state = unet.state_dict()
    ldm = {UNET_PREFIX + unet_key(k, unet.config): v for k, v in state.items()}
    assert len(ldm) == len(state) == 686
    for name in ("input_blocks.3.0.op.weight", "input_blocks.4.1.proj_in.weight", "input_blocks.11.0.out_layers.3.weight",
                 "middle_block.2.emb_layers.1.weight", "output_blocks.2.1.conv.weight", "output_blocks.5.2.conv.weight",
                 "output_blocks.8.2.conv.weight", "output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight",
                 "time_embed.2.bias", "out.2.weight"):
        assert UNET_PREFIX + name in ldm, name
    back = convert_ldm_unet_checkpoint(ldm, unet.config)
    assert set(back) == set(state)
    assert all(back[k].shape == state[k].shape for k in state)


def test_vae_names_are_the_original_ones_and_convert_back(sd15):
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    _, vae = sd15
    state = vae.state_dict()
    ldm = {VAE_PREFIX + vae_key(k, vae.config): v for k, v in state.items()}
    for name in ("encoder.down.0.downsample.conv.weight", "encoder.mid.attn_1.q.weight", "decoder.up.3.upsample.conv.weight",
                 "decoder.up.0.block.0.nin_shortcut.weight", "decoder.up.1.block.2.conv2.weight",
                 "decoder.mid.block_2.conv2.weight", "post_quant_conv.bias"):
        assert VAE_PREFIX + name in ldm, name
    assert not any(".up.0.upsample" in k for k in ldm)  # the last decoder block (up.0 in LDM) has no upsampler
    ldm = {k: v.reshape(*v.shape, 1, 1) if ".attn_1." in k and v.ndim == 2 else v  # LDM: 1×1 convolutions
           for k, v in ldm.items()}
    back = convert_ldm_vae_checkpoint(ldm, vae.config)
    assert set(back) == set(state)
    assert all(back[k].shape == state[k].shape for k in state)
