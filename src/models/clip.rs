//! CLIP (transformers `models/clip/modeling_clip.py`): one transformer encoder serving both the
//! text tower (SD's `text_encoder`, and the reward embedder's text side) and the vision tower
//! (ViT with class token), plus `CLIPModel`'s two projections. Trainable like every model here.

use crate::models::nn::{attention, linear, quick_gelu, LayerNorm, Linear};
use anyhow::{bail, Result};
use candle_core::{DType, IndexOp, Module, Tensor, D};
use candle_nn::{Conv2d, Embedding, Init, VarBuilder};
use serde::{Deserialize, Serialize};

fn text_vocab() -> usize {
    49408
}
fn text_hidden() -> usize {
    512
}
fn text_inter() -> usize {
    2048
}
fn text_layers() -> usize {
    12
}
fn text_heads() -> usize {
    8
}
fn max_pos() -> usize {
    77
}
fn act() -> String {
    "quick_gelu".into()
}
fn ln_eps() -> f64 {
    1e-5
}
fn eos() -> u32 {
    2
}
fn vis_hidden() -> usize {
    768
}
fn vis_inter() -> usize {
    3072
}
fn vis_heads() -> usize {
    12
}
fn image_size() -> usize {
    224
}
fn patch_size() -> usize {
    32
}
fn channels() -> usize {
    3
}
fn proj_dim() -> usize {
    512
}

/// `CLIPTextConfig` (SD's `text_encoder/config.json`, or `text_config` inside a CLIP config).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipTextConfig {
    #[serde(default = "text_vocab")]
    pub vocab_size: usize,
    #[serde(default = "text_hidden")]
    pub hidden_size: usize,
    #[serde(default = "text_inter")]
    pub intermediate_size: usize,
    #[serde(default = "text_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "text_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "act")]
    pub hidden_act: String,
    #[serde(default = "ln_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "eos")]
    pub eos_token_id: u32,
    #[serde(default)]
    pub projection_dim: Option<usize>,
}

/// `CLIPVisionConfig` (`vision_config` inside a CLIP config).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipVisionConfig {
    #[serde(default = "vis_hidden")]
    pub hidden_size: usize,
    #[serde(default = "vis_inter")]
    pub intermediate_size: usize,
    #[serde(default = "text_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "vis_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "image_size")]
    pub image_size: usize,
    #[serde(default = "patch_size")]
    pub patch_size: usize,
    #[serde(default = "channels")]
    pub num_channels: usize,
    #[serde(default = "act")]
    pub hidden_act: String,
    #[serde(default = "ln_eps")]
    pub layer_norm_eps: f64,
}

/// `CLIPConfig` (the reward embedder's `config.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipConfig {
    pub text_config: ClipTextConfig,
    pub vision_config: ClipVisionConfig,
    #[serde(default = "proj_dim")]
    pub projection_dim: usize,
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    QuickGelu,
    Gelu,
}

impl Activation {
    fn parse(s: &str) -> Result<Self> {
        match s {
            "quick_gelu" => Ok(Activation::QuickGelu),
            "gelu" => Ok(Activation::Gelu),
            other => bail!("clip config: hidden_act `{other}` is not supported (quick_gelu, gelu)"),
        }
    }

    fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::QuickGelu => quick_gelu(x),
            Activation::Gelu => x.gelu_erf(),
        }
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    ln1: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    ln2: LayerNorm,
    heads: usize,
    act: Activation,
}

impl EncoderLayer {
    fn new(
        vb: VarBuilder,
        d: usize,
        inter: usize,
        heads: usize,
        eps: f64,
        act: Activation,
    ) -> Result<Self> {
        let a = vb.pp("self_attn");
        Ok(Self {
            q: linear(d, d, true, a.pp("q_proj"))?,
            k: linear(d, d, true, a.pp("k_proj"))?,
            v: linear(d, d, true, a.pp("v_proj"))?,
            out: linear(d, d, true, a.pp("out_proj"))?,
            ln1: LayerNorm::new(d, eps, vb.pp("layer_norm1"))?,
            fc1: linear(d, inter, true, vb.pp("mlp").pp("fc1"))?,
            fc2: linear(inter, d, true, vb.pp("mlp").pp("fc2"))?,
            ln2: LayerNorm::new(d, eps, vb.pp("layer_norm2"))?,
            heads,
            act,
        })
    }

    fn forward(&self, x: &Tensor, causal: bool) -> candle_core::Result<Tensor> {
        let h = self.ln1.forward(x)?;
        let (q, k, v) = (
            self.q.forward(&h)?,
            self.k.forward(&h)?,
            self.v.forward(&h)?,
        );
        let x = (self
            .out
            .forward(&attention(&q, &k, &v, self.heads, causal)?)?
            + x)?;
        let h = self
            .fc2
            .forward(&self.act.apply(&self.fc1.forward(&self.ln2.forward(&x)?)?)?)?;
        h + x
    }
}

#[derive(Debug, Clone)]
struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    fn new(
        vb: VarBuilder,
        d: usize,
        inter: usize,
        layers: usize,
        heads: usize,
        eps: f64,
        act: &str,
    ) -> Result<Self> {
        let act = Activation::parse(act)?;
        if !d.is_multiple_of(heads) {
            bail!("clip config: hidden_size {d} is not a multiple of num_attention_heads {heads}");
        }
        let layers = (0..layers)
            .map(|i| EncoderLayer::new(vb.pp("layers").pp(i), d, inter, heads, eps, act))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    fn forward(&self, x: &Tensor, causal: bool) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for l in &self.layers {
            x = l.forward(&x, causal)?;
        }
        Ok(x)
    }
}

/// Outputs of a tower: every token's state and the pooled one.
pub struct TowerOutput {
    pub last_hidden_state: Tensor,
    pub pooled: Tensor,
}

/// `CLIPTextTransformer` (`text_model.*`).
#[derive(Debug, Clone)]
pub struct ClipTextTransformer {
    pub config: ClipTextConfig,
    token_embedding: Embedding,
    position_embedding: Tensor,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
}

impl ClipTextTransformer {
    /// `vb` points at the `text_model` prefix.
    pub fn new(vb: VarBuilder, c: &ClipTextConfig) -> Result<Self> {
        let d = c.hidden_size;
        let e = vb.pp("embeddings");
        let tok = e.pp("token_embedding").get_with_hints(
            (c.vocab_size, d),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        )?;
        let position_embedding = e.pp("position_embedding").get_with_hints(
            (c.max_position_embeddings, d),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: 0.01,
            },
        )?;
        Ok(Self {
            config: c.clone(),
            token_embedding: Embedding::new(tok, d),
            position_embedding,
            encoder: Encoder::new(
                vb.pp("encoder"),
                d,
                c.intermediate_size,
                c.num_hidden_layers,
                c.num_attention_heads,
                c.layer_norm_eps,
                &c.hidden_act,
            )?,
            final_layer_norm: LayerNorm::new(d, c.layer_norm_eps, vb.pp("final_layer_norm"))?,
        })
    }

    /// `ids` `(B, L)` u32. Pooled: the state at the end-of-text token (the first `eos_token_id`, or
    /// the largest id when the config keeps the legacy `eos_token_id = 2`, as transformers does).
    pub fn forward(&self, ids: &Tensor) -> Result<TowerOutput> {
        let (b, l) = ids.dims2()?;
        if l > self.config.max_position_embeddings {
            bail!(
                "clip text: {l} tokens exceed max_position_embeddings {}",
                self.config.max_position_embeddings
            );
        }
        let x = self
            .token_embedding
            .forward(ids)?
            .broadcast_add(&self.position_embedding.narrow(0, 0, l)?)?;
        let x = self.encoder.forward(&x, true)?;
        let x = self.final_layer_norm.forward(&x)?;
        let ids_v: Vec<Vec<u32>> = ids.to_dtype(DType::U32)?.to_vec2()?;
        let eos = self.config.eos_token_id;
        let positions: Vec<u32> = ids_v
            .iter()
            .map(|row| {
                let pos = if eos == 2 {
                    let max = row.iter().copied().max().unwrap_or(0);
                    row.iter().position(|&t| t == max)
                } else {
                    row.iter().position(|&t| t == eos)
                };
                pos.unwrap_or(row.len() - 1) as u32
            })
            .collect();
        let idx = Tensor::from_vec(positions, b, x.device())?;
        let rows: Vec<Tensor> = (0..b)
            .map(|i| x.i(i)?.index_select(&idx.i(i..i + 1)?, 0))
            .collect::<candle_core::Result<_>>()?;
        let pooled = Tensor::cat(&rows, 0)?;
        Ok(TowerOutput {
            last_hidden_state: x,
            pooled,
        })
    }
}

/// `CLIPVisionTransformer` (`vision_model.*`).
#[derive(Debug, Clone)]
pub struct ClipVisionTransformer {
    pub config: ClipVisionConfig,
    class_embedding: Tensor,
    patch_embedding: Conv2d,
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
}

impl ClipVisionTransformer {
    /// `vb` points at the `vision_model` prefix.
    pub fn new(vb: VarBuilder, c: &ClipVisionConfig) -> Result<Self> {
        let d = c.hidden_size;
        let e = vb.pp("embeddings");
        let n_pos = (c.image_size / c.patch_size).pow(2) + 1;
        let cfg = candle_nn::Conv2dConfig {
            stride: c.patch_size,
            ..Default::default()
        };
        let patch_embedding = candle_nn::conv2d_no_bias(
            c.num_channels,
            d,
            c.patch_size,
            cfg,
            e.pp("patch_embedding"),
        )?;
        Ok(Self {
            config: c.clone(),
            class_embedding: e.get_with_hints(
                d,
                "class_embedding",
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            )?,
            patch_embedding,
            position_embedding: e.pp("position_embedding").get_with_hints(
                (n_pos, d),
                "weight",
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            )?,
            pre_layrnorm: LayerNorm::new(d, c.layer_norm_eps, vb.pp("pre_layrnorm"))?,
            encoder: Encoder::new(
                vb.pp("encoder"),
                d,
                c.intermediate_size,
                c.num_hidden_layers,
                c.num_attention_heads,
                c.layer_norm_eps,
                &c.hidden_act,
            )?,
            post_layernorm: LayerNorm::new(d, c.layer_norm_eps, vb.pp("post_layernorm"))?,
        })
    }

    /// `pixels` `(B, 3, S, S)`, already CLIP-normalised. Pooled: post-LN class token.
    pub fn forward(&self, pixels: &Tensor) -> Result<TowerOutput> {
        let (b, _, h, w) = pixels.dims4()?;
        if h != self.config.image_size || w != self.config.image_size {
            bail!(
                "clip vision: expected {0}x{0} pixels, got {h}x{w}",
                self.config.image_size
            );
        }
        let d = self.config.hidden_size;
        let patches = self
            .patch_embedding
            .forward(pixels)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let cls = self
            .class_embedding
            .reshape((1, 1, d))?
            .broadcast_as((b, 1, d))?
            .to_dtype(patches.dtype())?;
        let x = Tensor::cat(&[&cls, &patches], 1)?.broadcast_add(&self.position_embedding)?;
        let x = self.pre_layrnorm.forward(&x)?;
        let x = self.encoder.forward(&x, false)?;
        let pooled = self.post_layernorm.forward(&x.i((.., 0, ..))?)?;
        Ok(TowerOutput {
            last_hidden_state: x,
            pooled,
        })
    }
}

/// SD's `text_encoder`: `CLIPTextModel`, whose `last_hidden_state` conditions the UNet.
#[derive(Debug, Clone)]
pub struct ClipTextModel {
    pub text_model: ClipTextTransformer,
}

impl ClipTextModel {
    pub fn new(vb: VarBuilder, c: &ClipTextConfig) -> Result<Self> {
        Ok(Self {
            text_model: ClipTextTransformer::new(vb.pp("text_model"), c)?,
        })
    }

    pub fn forward(&self, ids: &Tensor) -> Result<TowerOutput> {
        self.text_model.forward(ids)
    }
}

/// `CLIPModel` with both towers and projections: the reward model's frozen embedder.
#[derive(Debug, Clone)]
pub struct ClipModel {
    pub config: ClipConfig,
    pub text: ClipTextTransformer,
    pub vision: ClipVisionTransformer,
    text_projection: Linear,
    visual_projection: Linear,
    pub logit_scale: Tensor,
}

impl ClipModel {
    pub fn new(vb: VarBuilder, c: &ClipConfig) -> Result<Self> {
        let p = c.projection_dim;
        Ok(Self {
            config: c.clone(),
            text: ClipTextTransformer::new(vb.pp("text_model"), &c.text_config)?,
            vision: ClipVisionTransformer::new(vb.pp("vision_model"), &c.vision_config)?,
            text_projection: linear(
                c.text_config.hidden_size,
                p,
                false,
                vb.pp("text_projection"),
            )?,
            visual_projection: linear(
                c.vision_config.hidden_size,
                p,
                false,
                vb.pp("visual_projection"),
            )?,
            logit_scale: vb.get_with_hints((), "logit_scale", Init::Const(2.6592))?,
        })
    }

    /// Projected text features (not normalised), as `get_text_features`.
    pub fn text_features(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self
            .text_projection
            .forward(&self.text.forward(ids)?.pooled)?)
    }

    /// Projected image features (not normalised), as `get_image_features`.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        Ok(self
            .visual_projection
            .forward(&self.vision.forward(pixels)?.pooled)?)
    }
}

/// Rows scaled to unit L2 norm.
pub fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}
