//! `ResnetBlock2D` (diffusers `models/resnets.py`), used by the UNet (with a time embedding) and the
//! VAE (without one).

use crate::models::nn::{conv2d, group_norm, linear, silu, Conv2d, GroupNorm, Linear};
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

/// How a resnet takes the UNet's time embedding (diffusers' `time_embedding_norm`, set by the UNet
/// config's `resnet_time_scale_shift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeInput {
    /// No time embedding (the VAE).
    None,
    /// Projected to the block's width and added before `norm2` (SD1.5's "default"). Where a
    /// GroupNorm group holds one channel, `norm2` removes it entirely.
    Add { temb_channels: usize },
    /// Projected to a per-channel scale and shift applied after `norm2` ("scale_shift", as in
    /// improved DDPM and ADM): no normalisation can remove it.
    ScaleShift { temb_channels: usize },
}

/// A resnet's projection of the time embedding (`time_emb_proj`), by how it is applied.
#[derive(Debug, Clone)]
enum TimeProj {
    None,
    /// To `cout` channels, added before `norm2`.
    Add(Linear),
    /// To `2 cout` channels: a scale (plus 1) and a shift after `norm2`.
    ScaleShift(Linear),
}

#[derive(Debug, Clone)]
pub struct ResnetBlock2D {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: TimeProj,
    norm2: GroupNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
}

impl ResnetBlock2D {
    pub fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        time: TimeInput,
        groups: usize,
        eps: f64,
    ) -> Result<Self> {
        let norm1 = group_norm(groups, cin, eps, vb.pp("norm1"))?;
        let conv1 = conv2d(cin, cout, 3, 1, 1, vb.pp("conv1"))?;
        let time_emb_proj = match time {
            TimeInput::None => TimeProj::None,
            TimeInput::Add { temb_channels } => {
                TimeProj::Add(linear(temb_channels, cout, true, vb.pp("time_emb_proj"))?)
            }
            TimeInput::ScaleShift { temb_channels } => TimeProj::ScaleShift(linear(
                temb_channels,
                2 * cout,
                true,
                vb.pp("time_emb_proj"),
            )?),
        };
        let norm2 = group_norm(groups, cout, eps, vb.pp("norm2"))?;
        let conv2 = conv2d(cout, cout, 3, 1, 1, vb.pp("conv2"))?;
        let conv_shortcut = if cin != cout {
            Some(conv2d(cin, cout, 1, 1, 0, vb.pp("conv_shortcut"))?)
        } else {
            None
        };
        Ok(Self {
            norm1,
            conv1,
            time_emb_proj,
            norm2,
            conv2,
            conv_shortcut,
        })
    }

    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let h = self.conv1.forward(&silu(&self.norm1.forward(x)?)?)?;
        let project = |proj: &Linear, temb: &Tensor| -> Result<Tensor> {
            proj.forward(&silu(temb)?)?.unsqueeze(2)?.unsqueeze(3)
        };
        let h = match (&self.time_emb_proj, temb) {
            (TimeProj::Add(proj), Some(temb)) => self
                .norm2
                .forward(&h.broadcast_add(&project(proj, temb)?)?)?,
            (TimeProj::ScaleShift(proj), Some(temb)) => {
                let t = project(proj, temb)?;
                let c = t.dim(1)? / 2;
                let scale = (t.narrow(1, 0, c)? + 1.0)?;
                self.norm2
                    .forward(&h)?
                    .broadcast_mul(&scale)?
                    .broadcast_add(&t.narrow(1, c, c)?)?
            }
            _ => self.norm2.forward(&h)?,
        };
        let h = self.conv2.forward(&silu(&h)?)?;
        let skip = match &self.conv_shortcut {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        skip + h
    }
}

/// 2x downsampling by a strided 3x3 conv (`downsamplers.0.conv`). The VAE pads (0,1,0,1) by hand
/// and uses no conv padding; the UNet uses padding 1.
#[derive(Debug, Clone)]
pub struct Downsample2D {
    conv: Conv2d,
    asymmetric_pad: bool,
}

impl Downsample2D {
    pub fn new(vb: VarBuilder, channels: usize, padding: usize) -> Result<Self> {
        let conv = conv2d(channels, channels, 3, 2, padding, vb.pp("conv"))?;
        Ok(Self {
            conv,
            asymmetric_pad: padding == 0,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if self.asymmetric_pad {
            x.pad_with_zeros(2, 0, 1)?.pad_with_zeros(3, 0, 1)?
        } else {
            x.clone()
        };
        self.conv.forward(&x)
    }
}

/// 2x nearest upsampling followed by a 3x3 conv (`upsamplers.0.conv`).
#[derive(Debug, Clone)]
pub struct Upsample2D {
    conv: Conv2d,
}

impl Upsample2D {
    pub fn new(vb: VarBuilder, channels: usize) -> Result<Self> {
        Ok(Self {
            conv: conv2d(channels, channels, 3, 1, 1, vb.pp("conv"))?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        self.conv.forward(&x.upsample_nearest2d(h * 2, w * 2)?)
    }
}
