//! `Transformer2DModel` with `BasicTransformerBlock`s (diffusers `models/transformers/
//! transformer_2d.py`, `models/attention.py`): self-attention, cross-attention on the text
//! embeddings, and a GEGLU feed-forward, between a GroupNorm + projection in and a projection out.

use crate::models::nn::{
    attention, conv2d, group_norm, linear, Conv2d, GroupNorm, LayerNorm, Linear,
};
use candle_core::{Module, Result, Tensor, D};
use candle_nn::VarBuilder;

/// diffusers `Attention` with the default processor: q from x, k/v from the context (or x).
#[derive(Debug, Clone)]
pub struct CrossAttention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
}

impl CrossAttention {
    pub fn new(
        vb: VarBuilder,
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        head_dim: usize,
    ) -> Result<Self> {
        let inner = heads * head_dim;
        Ok(Self {
            to_q: linear(query_dim, inner, false, vb.pp("to_q"))?,
            to_k: linear(context_dim, inner, false, vb.pp("to_k"))?,
            to_v: linear(context_dim, inner, false, vb.pp("to_v"))?,
            to_out: linear(inner, query_dim, true, vb.pp("to_out").pp("0"))?,
            heads,
        })
    }

    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let ctx = context.unwrap_or(x);
        let q = self.to_q.forward(x)?;
        let k = self.to_k.forward(ctx)?;
        let v = self.to_v.forward(ctx)?;
        self.to_out
            .forward(&attention(&q, &k, &v, self.heads, false)?)
    }
}

/// GEGLU feed-forward: `net.0.proj` to 2x inner, gelu-gated, `net.2` back.
#[derive(Debug, Clone)]
struct FeedForward {
    proj_in: Linear,
    proj_out: Linear,
}

impl FeedForward {
    fn new(vb: VarBuilder, dim: usize) -> Result<Self> {
        let inner = dim * 4;
        Ok(Self {
            proj_in: linear(dim, inner * 2, true, vb.pp("net").pp("0").pp("proj"))?,
            proj_out: linear(inner, dim, true, vb.pp("net").pp("2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.proj_in.forward(x)?;
        let half = h.dim(D::Minus1)? / 2;
        let (hidden, gate) = (
            h.narrow(D::Minus1, 0, half)?,
            h.narrow(D::Minus1, half, half)?,
        );
        self.proj_out.forward(&(hidden * gate.gelu_erf()?)?)
    }
}

#[derive(Debug, Clone)]
struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: CrossAttention,
    norm2: LayerNorm,
    attn2: CrossAttention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl BasicTransformerBlock {
    fn new(
        vb: VarBuilder,
        dim: usize,
        heads: usize,
        head_dim: usize,
        context_dim: usize,
    ) -> Result<Self> {
        Ok(Self {
            norm1: LayerNorm::new(dim, 1e-5, vb.pp("norm1"))?,
            attn1: CrossAttention::new(vb.pp("attn1"), dim, dim, heads, head_dim)?,
            norm2: LayerNorm::new(dim, 1e-5, vb.pp("norm2"))?,
            attn2: CrossAttention::new(vb.pp("attn2"), dim, context_dim, heads, head_dim)?,
            norm3: LayerNorm::new(dim, 1e-5, vb.pp("norm3"))?,
            ff: FeedForward::new(vb.pp("ff"), dim)?,
        })
    }

    fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let x = (self.attn1.forward(&self.norm1.forward(x)?, None)? + x)?;
        let x = (self
            .attn2
            .forward(&self.norm2.forward(&x)?, Some(context))?
            + &x)?;
        self.ff.forward(&self.norm3.forward(&x)?)? + x
    }
}

#[derive(Debug, Clone)]
enum Proj {
    Conv(Conv2d),
    Linear(Linear),
}

impl Proj {
    fn new(vb: VarBuilder, cin: usize, cout: usize, use_linear: bool) -> Result<Self> {
        Ok(if use_linear {
            Proj::Linear(linear(cin, cout, true, vb)?)
        } else {
            Proj::Conv(conv2d(cin, cout, 1, 1, 0, vb)?)
        })
    }
}

/// Spatial transformer: `norm`, `proj_in`, `transformer_blocks.N`, `proj_out`, plus the residual.
#[derive(Debug, Clone)]
pub struct Transformer2D {
    norm: GroupNorm,
    proj_in: Proj,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Proj,
}

pub struct Transformer2DConfig {
    pub channels: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub layers: usize,
    pub context_dim: usize,
    pub groups: usize,
    pub use_linear_projection: bool,
}

impl Transformer2D {
    pub fn new(vb: VarBuilder, c: &Transformer2DConfig) -> Result<Self> {
        let inner = c.heads * c.head_dim;
        let norm = group_norm(c.groups, c.channels, 1e-6, vb.pp("norm"))?;
        let proj_in = Proj::new(vb.pp("proj_in"), c.channels, inner, c.use_linear_projection)?;
        let blocks = (0..c.layers)
            .map(|i| {
                BasicTransformerBlock::new(
                    vb.pp("transformer_blocks").pp(i),
                    inner,
                    c.heads,
                    c.head_dim,
                    c.context_dim,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let proj_out = Proj::new(
            vb.pp("proj_out"),
            inner,
            c.channels,
            c.use_linear_projection,
        )?;
        Ok(Self {
            norm,
            proj_in,
            blocks,
            proj_out,
        })
    }

    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let residual = x;
        let x = self.norm.forward(x)?;
        let tokens = |t: &Tensor| -> Result<Tensor> {
            let ch = t.dim(1)?;
            t.permute((0, 2, 3, 1))?.reshape((b, h * w, ch))
        };
        let mut x = match &self.proj_in {
            Proj::Conv(conv) => tokens(&conv.forward(&x)?)?,
            Proj::Linear(l) => l.forward(&tokens(&x)?)?,
        };
        for block in &self.blocks {
            x = block.forward(&x, context)?;
        }
        let x = match &self.proj_out {
            Proj::Conv(conv) => {
                let inner = x.dim(2)?;
                conv.forward(&x.reshape((b, h, w, inner))?.permute((0, 3, 1, 2))?)?
            }
            Proj::Linear(l) => l
                .forward(&x)?
                .reshape((b, h, w, c))?
                .permute((0, 3, 1, 2))?,
        };
        x + residual
    }
}
