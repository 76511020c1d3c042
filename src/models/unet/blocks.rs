//! The UNet's down, mid and up blocks (diffusers `models/unets/unet_2d_blocks.py`):
//! `CrossAttnDownBlock2D` / `DownBlock2D`, `UNetMidBlock2DCrossAttn`, `CrossAttnUpBlock2D` /
//! `UpBlock2D`. A block without attentions is the plain variant.

use super::resnet::{Downsample2D, ResnetBlock2D, TimeInput, Upsample2D};
use super::transformer::{Transformer2D, Transformer2DConfig};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

/// What every block of one UNet shares.
#[derive(Debug, Clone, Copy)]
pub struct BlockCommon {
    pub time: TimeInput,
    pub groups: usize,
    pub eps: f64,
    pub context_dim: usize,
    pub transformer_layers: usize,
    pub use_linear_projection: bool,
}

/// Attention heads of a block, or none for the plain variants.
pub type Heads = Option<usize>;

fn transformer(
    vb: VarBuilder,
    c: &BlockCommon,
    channels: usize,
    heads: usize,
) -> Result<Transformer2D> {
    Transformer2D::new(
        vb,
        &Transformer2DConfig {
            channels,
            heads,
            head_dim: channels / heads,
            layers: c.transformer_layers,
            context_dim: c.context_dim,
            groups: c.groups,
            use_linear_projection: c.use_linear_projection,
        },
    )
}

#[derive(Debug, Clone)]
pub struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2D>,
    downsample: Option<Downsample2D>,
}

impl DownBlock {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vb: VarBuilder,
        c: &BlockCommon,
        cin: usize,
        cout: usize,
        layers: usize,
        heads: Heads,
        add_downsample: bool,
        downsample_padding: usize,
    ) -> Result<Self> {
        let mut resnets = Vec::with_capacity(layers);
        let mut attentions = Vec::new();
        for i in 0..layers {
            let rin = if i == 0 { cin } else { cout };
            resnets.push(ResnetBlock2D::new(
                vb.pp("resnets").pp(i),
                rin,
                cout,
                c.time,
                c.groups,
                c.eps,
            )?);
            if let Some(h) = heads {
                attentions.push(transformer(vb.pp("attentions").pp(i), c, cout, h)?);
            }
        }
        let downsample = if add_downsample {
            Some(Downsample2D::new(
                vb.pp("downsamplers").pp(0),
                cout,
                downsample_padding,
            )?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            attentions,
            downsample,
        })
    }

    /// Returns the block output and the skip tensors it hands to the up path.
    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        context: &Tensor,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut x = x.clone();
        let mut skips = Vec::with_capacity(self.resnets.len() + 1);
        for (i, resnet) in self.resnets.iter().enumerate() {
            x = resnet.forward(&x, Some(temb))?;
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(&x, context)?;
            }
            skips.push(x.clone());
        }
        if let Some(down) = &self.downsample {
            x = down.forward(&x)?;
            skips.push(x.clone());
        }
        Ok((x, skips))
    }
}

#[derive(Debug, Clone)]
pub struct MidBlock {
    resnet0: ResnetBlock2D,
    attention: Transformer2D,
    resnet1: ResnetBlock2D,
}

impl MidBlock {
    pub fn new(vb: VarBuilder, c: &BlockCommon, channels: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            resnet0: ResnetBlock2D::new(
                vb.pp("resnets").pp(0),
                channels,
                channels,
                c.time,
                c.groups,
                c.eps,
            )?,
            attention: transformer(vb.pp("attentions").pp(0), c, channels, heads)?,
            resnet1: ResnetBlock2D::new(
                vb.pp("resnets").pp(1),
                channels,
                channels,
                c.time,
                c.groups,
                c.eps,
            )?,
        })
    }

    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: &Tensor) -> Result<Tensor> {
        let x = self.resnet0.forward(x, Some(temb))?;
        let x = self.attention.forward(&x, context)?;
        self.resnet1.forward(&x, Some(temb))
    }
}

#[derive(Debug, Clone)]
pub struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2D>,
    upsample: Option<Upsample2D>,
}

impl UpBlock {
    /// `cin` is the channel count of the matching down block's input, `prev` the previous up
    /// block's output; resnet `i` sees `[x, skip]` concatenated on channels.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vb: VarBuilder,
        c: &BlockCommon,
        cin: usize,
        prev: usize,
        cout: usize,
        layers: usize,
        heads: Heads,
        add_upsample: bool,
    ) -> Result<Self> {
        let mut resnets = Vec::with_capacity(layers);
        let mut attentions = Vec::new();
        for i in 0..layers {
            let skip = if i == layers - 1 { cin } else { cout };
            let rin = if i == 0 { prev } else { cout };
            resnets.push(ResnetBlock2D::new(
                vb.pp("resnets").pp(i),
                rin + skip,
                cout,
                c.time,
                c.groups,
                c.eps,
            )?);
            if let Some(h) = heads {
                attentions.push(transformer(vb.pp("attentions").pp(i), c, cout, h)?);
            }
        }
        let upsample = if add_upsample {
            Some(Upsample2D::new(vb.pp("upsamplers").pp(0), cout)?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            attentions,
            upsample,
        })
    }

    pub fn num_skips(&self) -> usize {
        self.resnets.len()
    }

    /// `skips` are consumed from the end, the most recent first.
    pub fn forward(
        &self,
        x: &Tensor,
        skips: &[Tensor],
        temb: &Tensor,
        context: &Tensor,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        for (i, resnet) in self.resnets.iter().enumerate() {
            let skip = &skips[skips.len() - 1 - i];
            x = resnet.forward(&Tensor::cat(&[&x, skip], 1)?, Some(temb))?;
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(&x, context)?;
            }
        }
        match &self.upsample {
            Some(up) => up.forward(&x),
            None => Ok(x),
        }
    }
}
