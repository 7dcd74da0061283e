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


def _back_to_diffusers(unet, vae) -> None:
    """Both models' weights → original names → diffusers' own LDM converters → the same names and shapes."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

    for model, prefix, name_of, convert in ((unet, UNET_PREFIX, unet_key, convert_ldm_unet_checkpoint),
                                            (vae, VAE_PREFIX, vae_key, convert_ldm_vae_checkpoint)):
        state = model.state_dict()
        ldm = {prefix + name_of(k, model.config): v for k, v in state.items()}
        ldm = {k: v.reshape(*v.shape, 1, 1) if ".attn_1." in k and v.ndim == 2 else v  # LDM: 1×1 convolutions
               for k, v in ldm.items()}
        back = convert(ldm, model.config)
        assert set(back) == set(state)
        assert all(back[k].shape == state[k].shape for k in state)


def test_an_image_scratch_model_converts_back():
    """The `image-scratch` job's layout: three UNet blocks of one layer, a VAE without mid attention."""
    from accelerate import init_empty_weights

    from engines.image.scratch_model import build_unet, build_vae

    with init_empty_weights():
        _back_to_diffusers(build_unet("tiny", 8, 64), build_vae("tiny", 8, 64))


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
    assert len(ldm) == len(state) == 248  # as in the SD 1.x checkpoints
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


def test_a_fused_image_lora_lands_in_the_file(tmp_path):
    """Base + LoRA fused, written in fp16 and reloaded by diffusers: the UNet is the fused one, not the base."""
    import torch
    from diffusers import StableDiffusionPipeline

    from engines.image.export import fuse_lora
    from engines.image.single_file import save_checkpoint
    from engines.image.train_model import add_lora, load_pipeline, save_lora
    from engines.starter import STARTER_IMAGE, ensure_starter

    folder = str(ensure_starter(STARTER_IMAGE, tmp_path / "models"))
    pipe = load_pipeline(folder, torch.float32)
    torch.manual_seed(0)
    for weight in add_lora(pipe.unet, rank=4, alpha=4, dropout=0.0):
        weight.data.normal_(0, 0.2)  # gaussian init leaves lora_B at zero: give the LoRA an effect
    save_lora(pipe.unet, tmp_path / "lora", "test LoRA")

    base, fused = load_pipeline(folder, torch.float32), load_pipeline(folder, torch.float32)
    fuse_lora(fused, tmp_path / "lora", 0.8)
    assert not any("lora" in k for k in fused.unet.state_dict())
    save_checkpoint(fused, tmp_path / "fused.safetensors", torch.float16)
    reloaded = StableDiffusionPipeline.from_single_file(str(tmp_path / "fused.safetensors"), config=folder,
                                                        local_files_only=True, torch_dtype=torch.float32)
    a, b, c = fused.unet.state_dict(), reloaded.unet.state_dict(), base.unet.state_dict()
    assert set(a) == set(b)
    assert all(torch.allclose(a[k].half().float(), b[k], atol=1e-3, rtol=1e-3) for k in a)
    changed = [k for k in a if not torch.allclose(b[k], c[k], atol=1e-2)]
    assert any("attn" in k for k in changed)  # the LoRA's attention projections moved
