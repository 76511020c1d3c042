//! Stable Diffusion's `AutoencoderKL` (diffusers `models/autoencoders/autoencoder_kl.py` and
//! `vae.py`): the encoder gives a diagonal Gaussian over latents, the decoder maps latents back to
//! images in [-1, 1]. Reads its architecture from `vae/config.json`.

use crate::models::nn::{attention, conv2d, group_norm, linear, silu, Conv2d, GroupNorm, Linear};
use crate::models::unet::resnet::{Downsample2D, ResnetBlock2D, TimeInput, Upsample2D};
use anyhow::{bail, Result};
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

fn default_groups() -> usize {
    32
}
fn default_scaling() -> f64 {
    0.18215
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaeConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub latent_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    #[serde(default = "default_groups")]
    pub norm_num_groups: usize,
    #[serde(default)]
    pub sample_size: usize,
    #[serde(default = "default_scaling")]
    pub scaling_factor: f64,
    #[serde(default)]
    pub down_block_types: Vec<String>,
    #[serde(default)]
    pub up_block_types: Vec<String>,
    #[serde(default = "default_true")]
    pub mid_block_add_attention: bool,
    #[serde(default)]
    pub act_fn: Option<String>,
}

impl VaeConfig {
    /// Image pixels per latent pixel along each side.
    pub fn scale_factor(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }

    fn validate(&self) -> Result<()> {
        for t in &self.down_block_types {
            if t != "DownEncoderBlock2D" {
                bail!("vae config: down block type `{t}` is not supported");
            }
        }
        for t in &self.up_block_types {
            if t != "UpDecoderBlock2D" {
                bail!("vae config: up block type `{t}` is not supported");
            }
        }
        if let Some(a) = self.act_fn.as_deref() {
            if a != "silu" {
                bail!("vae config: act_fn `{a}` is not supported");
            }
        }
        Ok(())
    }
}

/// Single-head self-attention over pixels with a GroupNorm in front and a residual; accepts both
/// the current diffusers names (`to_q`, ..., `to_out.0`) and the older ones (`query`, ...,
/// `proj_attn`) that some published checkpoints still carry.
#[derive(Debug, Clone)]
struct VaeAttention {
    group_norm: GroupNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
}

impl VaeAttention {
    fn new(vb: VarBuilder, channels: usize, groups: usize) -> Result<Self> {
        let old = !vb.contains_tensor("to_q.weight") && vb.contains_tensor("query.weight");
        let name = |new: &'static str, legacy: &'static str| if old { legacy } else { new };
        Ok(Self {
            group_norm: group_norm(groups, channels, 1e-6, vb.pp("group_norm"))?,
            q: linear(channels, channels, true, vb.pp(name("to_q", "query")))?,
            k: linear(channels, channels, true, vb.pp(name("to_k", "key")))?,
            v: linear(channels, channels, true, vb.pp(name("to_v", "value")))?,
            out: if old {
                linear(channels, channels, true, vb.pp("proj_attn"))?
            } else {
                linear(channels, channels, true, vb.pp("to_out").pp("0"))?
            },
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let t = self
            .group_norm
            .forward(x)?
            .reshape((b, c, h * w))?
            .transpose(1, 2)?
            .contiguous()?;
        let (q, k, v) = (
            self.q.forward(&t)?,
            self.k.forward(&t)?,
            self.v.forward(&t)?,
        );
        let y = self.out.forward(&attention(&q, &k, &v, 1, false)?)?;
        let y = y.transpose(1, 2)?.reshape((b, c, h, w))?;
        Ok((y + x)?)
    }
}

#[derive(Debug, Clone)]
struct VaeMid {
    resnet0: ResnetBlock2D,
    attention: Option<VaeAttention>,
    resnet1: ResnetBlock2D,
}

impl VaeMid {
    fn new(vb: VarBuilder, channels: usize, groups: usize, add_attention: bool) -> Result<Self> {
        Ok(Self {
            resnet0: ResnetBlock2D::new(
                vb.pp("resnets").pp(0),
                channels,
                channels,
                TimeInput::None,
                groups,
                1e-6,
            )?,
            attention: if add_attention {
                Some(VaeAttention::new(
                    vb.pp("attentions").pp(0),
                    channels,
                    groups,
                )?)
            } else {
                None
            },
            resnet1: ResnetBlock2D::new(
                vb.pp("resnets").pp(1),
                channels,
                channels,
                TimeInput::None,
                groups,
                1e-6,
            )?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.resnet0.forward(x, None)?;
        if let Some(a) = &self.attention {
            x = a.forward(&x)?;
        }
        Ok(self.resnet1.forward(&x, None)?)
    }
}

#[derive(Debug, Clone)]
struct Encoder {
    conv_in: Conv2d,
    blocks: Vec<(Vec<ResnetBlock2D>, Option<Downsample2D>)>,
    mid: VaeMid,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Encoder {
    fn new(vb: VarBuilder, c: &VaeConfig) -> Result<Self> {
        let ch = &c.block_out_channels;
        let g = c.norm_num_groups;
        let conv_in = conv2d(c.in_channels, ch[0], 3, 1, 1, vb.pp("conv_in"))?;
        let mut blocks = Vec::new();
        for i in 0..ch.len() {
            let vbb = vb.pp("down_blocks").pp(i);
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            let resnets = (0..c.layers_per_block)
                .map(|j| {
                    ResnetBlock2D::new(
                        vbb.pp("resnets").pp(j),
                        if j == 0 { cin } else { ch[i] },
                        ch[i],
                        TimeInput::None,
                        g,
                        1e-6,
                    )
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let down = if i + 1 < ch.len() {
                Some(Downsample2D::new(vbb.pp("downsamplers").pp(0), ch[i], 0)?)
            } else {
                None
            };
            blocks.push((resnets, down));
        }
        let last = ch[ch.len() - 1];
        Ok(Self {
            conv_in,
            blocks,
            mid: VaeMid::new(vb.pp("mid_block"), last, g, c.mid_block_add_attention)?,
            norm_out: group_norm(g, last, 1e-6, vb.pp("conv_norm_out"))?,
            conv_out: conv2d(last, 2 * c.latent_channels, 3, 1, 1, vb.pp("conv_out"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.conv_in.forward(x)?;
        for (resnets, down) in &self.blocks {
            for r in resnets {
                x = r.forward(&x, None)?;
            }
            if let Some(d) = down {
                x = d.forward(&x)?;
            }
        }
        let x = self.mid.forward(&x)?;
        Ok(self.conv_out.forward(&silu(&self.norm_out.forward(&x)?)?)?)
    }
}

#[derive(Debug, Clone)]
struct Decoder {
    conv_in: Conv2d,
    mid: VaeMid,
    blocks: Vec<(Vec<ResnetBlock2D>, Option<Upsample2D>)>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Decoder {
    fn new(vb: VarBuilder, c: &VaeConfig) -> Result<Self> {
        let rev: Vec<usize> = c.block_out_channels.iter().rev().copied().collect();
        let g = c.norm_num_groups;
        let conv_in = conv2d(c.latent_channels, rev[0], 3, 1, 1, vb.pp("conv_in"))?;
        let mid = VaeMid::new(vb.pp("mid_block"), rev[0], g, c.mid_block_add_attention)?;
        let mut blocks = Vec::new();
        let mut prev = rev[0];
        for (i, &cout) in rev.iter().enumerate() {
            let vbb = vb.pp("up_blocks").pp(i);
            let resnets = (0..c.layers_per_block + 1)
                .map(|j| {
                    ResnetBlock2D::new(
                        vbb.pp("resnets").pp(j),
                        if j == 0 { prev } else { cout },
                        cout,
                        TimeInput::None,
                        g,
                        1e-6,
                    )
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let up = if i + 1 < rev.len() {
                Some(Upsample2D::new(vbb.pp("upsamplers").pp(0), cout)?)
            } else {
                None
            };
            blocks.push((resnets, up));
            prev = cout;
        }
        let first = c.block_out_channels[0];
        Ok(Self {
            conv_in,
            mid,
            blocks,
            norm_out: group_norm(g, first, 1e-6, vb.pp("conv_norm_out"))?,
            conv_out: conv2d(first, c.out_channels, 3, 1, 1, vb.pp("conv_out"))?,
        })
    }

    fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let x = self.conv_in.forward(z)?;
        let mut x = self.mid.forward(&x)?;
        for (resnets, up) in &self.blocks {
            for r in resnets {
                x = r.forward(&x, None)?;
            }
            if let Some(u) = up {
                x = u.forward(&x)?;
            }
        }
        Ok(self.conv_out.forward(&silu(&self.norm_out.forward(&x)?)?)?)
    }
}

/// The encoder's output: a diagonal Gaussian over latents (unscaled).
#[derive(Debug, Clone)]
pub struct LatentDist {
    pub mean: Tensor,
    pub std: Tensor,
}

impl LatentDist {
    /// `mean + std * noise`, with `noise` drawn by the caller's seeded generator.
    pub fn sample(&self, noise: &Tensor) -> Result<Tensor> {
        Ok((&self.mean + (&self.std * noise)?)?)
    }
}

#[derive(Debug, Clone)]
pub struct AutoencoderKL {
    pub config: VaeConfig,
    encoder: Encoder,
    decoder: Decoder,
    quant_conv: Conv2d,
    post_quant_conv: Conv2d,
}

impl AutoencoderKL {
    pub fn new(vb: VarBuilder, config: &VaeConfig) -> Result<Self> {
        config.validate()?;
        let l = config.latent_channels;
        Ok(Self {
            config: config.clone(),
            encoder: Encoder::new(vb.pp("encoder"), config)?,
            decoder: Decoder::new(vb.pp("decoder"), config)?,
            quant_conv: conv2d(2 * l, 2 * l, 1, 1, 0, vb.pp("quant_conv"))?,
            post_quant_conv: conv2d(l, l, 1, 1, 0, vb.pp("post_quant_conv"))?,
        })
    }

    /// Images in [-1, 1], `(B, 3, H, W)`, to the latent distribution (before `scaling_factor`).
    pub fn encode(&self, images: &Tensor) -> Result<LatentDist> {
        let moments = self.quant_conv.forward(&self.encoder.forward(images)?)?;
        let l = self.config.latent_channels;
        let mean = moments.narrow(1, 0, l)?;
        let logvar = moments.narrow(1, l, l)?.clamp(-30f32, 20f32)?;
        let std = (logvar * 0.5)?.exp()?;
        Ok(LatentDist { mean, std })
    }

    /// Unscaled latents to images in (about) [-1, 1].
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        self.decoder
            .forward(&self.post_quant_conv.forward(latents)?)
    }
}
