//! Stable Diffusion's `UNet2DConditionModel` (diffusers `models/unets/unet_2d_condition.py`),
//! trainable: built from a [`ParamStore`](crate::weights::ParamStore), every op differentiable,
//! one timestep per sample.
//!
//! The architecture is read from the component's `config.json`, so the same code builds SD1.5 and
//! the tiny test models. Supported: the SD1.x/2.x family (cross-attention down/up blocks, the
//! cross-attention mid block, positional timestep embedding); other options are rejected by name.

mod blocks;
pub mod resnet;
pub mod transformer;

use crate::models::nn::{conv2d, group_norm, linear, silu, Conv2d, GroupNorm, Linear};
use anyhow::{bail, Result};
use blocks::{BlockCommon, DownBlock, MidBlock, UpBlock};
use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;
use resnet::TimeInput;
use serde::{Deserialize, Serialize};

/// An int or a per-block list, as diffusers writes `attention_head_dim`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    pub fn get(&self, i: usize) -> usize {
        match self {
            PerBlock::One(v) => *v,
            PerBlock::Each(v) => v[i.min(v.len() - 1)],
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_eps() -> f64 {
    1e-5
}
fn default_one() -> usize {
    1
}
fn default_groups() -> usize {
    32
}
fn default_act() -> String {
    "silu".into()
}

/// The fields of diffusers' UNet `config.json` this implementation reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UNetConfig {
    pub sample_size: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    #[serde(default)]
    pub center_input_sample: bool,
    #[serde(default = "default_true")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    #[serde(default = "default_one")]
    pub downsample_padding: usize,
    #[serde(default = "default_act")]
    pub act_fn: String,
    #[serde(default = "default_groups")]
    pub norm_num_groups: usize,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    pub cross_attention_dim: usize,
    pub attention_head_dim: PerBlock,
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default)]
    pub transformer_layers_per_block: Option<usize>,
    #[serde(default)]
    pub class_embed_type: Option<String>,
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    #[serde(default)]
    pub mid_block_type: Option<String>,
    #[serde(default)]
    pub time_embedding_type: Option<String>,
    #[serde(default)]
    pub resnet_time_scale_shift: Option<String>,
}

impl UNetConfig {
    pub fn validate(&self) -> Result<()> {
        let n = self.block_out_channels.len();
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            bail!(
                "unet config: {n} block_out_channels but {} down and {} up block types",
                self.down_block_types.len(),
                self.up_block_types.len()
            );
        }
        for t in &self.down_block_types {
            if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
                bail!("unet config: down block type `{t}` is not supported (CrossAttnDownBlock2D, DownBlock2D)");
            }
        }
        for t in &self.up_block_types {
            if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
                bail!("unet config: up block type `{t}` is not supported (CrossAttnUpBlock2D, UpBlock2D)");
            }
        }
        let unsupported = [
            ("class_embed_type", self.class_embed_type.as_deref()),
            ("addition_embed_type", self.addition_embed_type.as_deref()),
        ];
        for (name, v) in unsupported {
            if let Some(v) = v {
                bail!("unet config: {name} = `{v}` is not supported");
            }
        }
        if let Some(t) = self.mid_block_type.as_deref() {
            if t != "UNetMidBlock2DCrossAttn" {
                bail!("unet config: mid_block_type `{t}` is not supported");
            }
        }
        if let Some(t) = self.time_embedding_type.as_deref() {
            if t != "positional" {
                bail!("unet config: time_embedding_type `{t}` is not supported");
            }
        }
        if let Some(t) = self.resnet_time_scale_shift.as_deref() {
            if t != "default" && t != "scale_shift" {
                bail!("unet config: resnet_time_scale_shift `{t}` is not supported (default, scale_shift)");
            }
        }
        if self.act_fn != "silu" {
            bail!("unet config: act_fn `{}` is not supported", self.act_fn);
        }
        Ok(())
    }

    /// Heads per block: diffusers uses `num_attention_heads`, or falls back to `attention_head_dim`
    /// (SD1.x's config names the head count there).
    pub fn heads(&self, block: usize) -> usize {
        self.num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim)
            .get(block)
    }

    /// How much smaller the latent is at the bottom of the UNet.
    pub fn downscale(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }
}

/// Sinusoidal timestep features (`get_timestep_embedding`), one row per sample.
pub fn timestep_embedding(
    t: &Tensor,
    dim: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
) -> candle_core::Result<Tensor> {
    let half = dim / 2;
    let device = t.device();
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(10000f64.ln()) * i as f64 / (half as f64 - freq_shift)).exp() as f32)
        .collect();
    let freqs = Tensor::from_vec(freqs, (1, half), device)?;
    let args = t
        .to_dtype(DType::F32)?
        .unsqueeze(1)?
        .broadcast_mul(&freqs)?;
    let (sin, cos) = (args.sin()?, args.cos()?);
    let emb = if flip_sin_to_cos {
        Tensor::cat(&[cos, sin], 1)?
    } else {
        Tensor::cat(&[sin, cos], 1)?
    };
    if dim % 2 == 1 {
        emb.pad_with_zeros(1, 0, 1)
    } else {
        Ok(emb)
    }
}

#[derive(Debug, Clone)]
pub struct UNet2DConditionModel {
    pub config: UNetConfig,
    conv_in: Conv2d,
    time_linear_1: Linear,
    time_linear_2: Linear,
    down: Vec<DownBlock>,
    mid: MidBlock,
    up: Vec<UpBlock>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl UNet2DConditionModel {
    pub fn new(vb: VarBuilder, config: &UNetConfig) -> Result<Self> {
        config.validate()?;
        let ch = &config.block_out_channels;
        let n = ch.len();
        let temb = ch[0] * 4;
        let common = BlockCommon {
            time: if config.resnet_time_scale_shift.as_deref() == Some("scale_shift") {
                TimeInput::ScaleShift {
                    temb_channels: temb,
                }
            } else {
                TimeInput::Add {
                    temb_channels: temb,
                }
            },
            groups: config.norm_num_groups,
            eps: config.norm_eps,
            context_dim: config.cross_attention_dim,
            transformer_layers: config.transformer_layers_per_block.unwrap_or(1),
            use_linear_projection: config.use_linear_projection,
        };
        let conv_in = conv2d(config.in_channels, ch[0], 3, 1, 1, vb.pp("conv_in"))?;
        let time_linear_1 = linear(ch[0], temb, true, vb.pp("time_embedding").pp("linear_1"))?;
        let time_linear_2 = linear(temb, temb, true, vb.pp("time_embedding").pp("linear_2"))?;
        let mut down = Vec::with_capacity(n);
        for (i, kind) in config.down_block_types.iter().enumerate() {
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            let heads = (kind == "CrossAttnDownBlock2D").then(|| config.heads(i));
            down.push(DownBlock::new(
                vb.pp("down_blocks").pp(i),
                &common,
                cin,
                ch[i],
                config.layers_per_block,
                heads,
                i + 1 < n,
                config.downsample_padding,
            )?);
        }
        let mid = MidBlock::new(vb.pp("mid_block"), &common, ch[n - 1], config.heads(n - 1))?;
        let mut up = Vec::with_capacity(n);
        let mut prev = ch[n - 1];
        for (i, kind) in config.up_block_types.iter().enumerate() {
            let cout = ch[n - 1 - i];
            let cin = ch[(n - 1).saturating_sub(i + 1)];
            let heads = (kind == "CrossAttnUpBlock2D").then(|| config.heads(n - 1 - i));
            up.push(UpBlock::new(
                vb.pp("up_blocks").pp(i),
                &common,
                cin,
                prev,
                cout,
                config.layers_per_block + 1,
                heads,
                i + 1 < n,
            )?);
            prev = cout;
        }
        let norm_out = group_norm(
            config.norm_num_groups,
            ch[0],
            config.norm_eps,
            vb.pp("conv_norm_out"),
        )?;
        let conv_out = conv2d(ch[0], config.out_channels, 3, 1, 1, vb.pp("conv_out"))?;
        Ok(Self {
            config: config.clone(),
            conv_in,
            time_linear_1,
            time_linear_2,
            down,
            mid,
            up,
            norm_out,
            conv_out,
        })
    }

    /// Noise (or v) prediction for `sample` `(B, C, H, W)` at `timesteps` `(B,)` (any numeric
    /// dtype), conditioned on `context` `(B, L, cross_attention_dim)`.
    pub fn forward(&self, sample: &Tensor, timesteps: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, _, h, w) = sample.dims4()?;
        let k = self.config.downscale();
        if h % k != 0 || w % k != 0 {
            bail!("unet: latent size {h}x{w} must be a multiple of {k}");
        }
        if timesteps.dims() != [b] {
            bail!(
                "unet: expected one timestep per sample, shape [{b}], got {:?}",
                timesteps.dims()
            );
        }
        let dtype = sample.dtype();
        let sample = if self.config.center_input_sample {
            ((sample * 2.0)? - 1.0)?
        } else {
            sample.clone()
        };
        let t = timestep_embedding(
            timesteps,
            self.config.block_out_channels[0],
            self.config.flip_sin_to_cos,
            self.config.freq_shift as f64,
        )?
        .to_dtype(dtype)?;
        let temb = self
            .time_linear_2
            .forward(&silu(&self.time_linear_1.forward(&t)?)?)?;
        let mut x = self.conv_in.forward(&sample)?;
        let mut skips = vec![x.clone()];
        for block in &self.down {
            let (y, s) = block.forward(&x, &temb, context)?;
            x = y;
            skips.extend(s);
        }
        x = self.mid.forward(&x, &temb, context)?;
        for block in &self.up {
            let take = block.num_skips();
            let rest = skips.len() - take;
            x = block.forward(&x, &skips[rest..], &temb, context)?;
            skips.truncate(rest);
        }
        Ok(self.conv_out.forward(&silu(&self.norm_out.forward(&x)?)?)?)
    }
}
