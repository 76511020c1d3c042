//! Where the UNet denoises: in Stable Diffusion's VAE latents, or in the pixels themselves.
//!
//! A pipeline without a VAE is a pixel-space model (as DeepFloyd IF's first stage): its samples
//! are RGB images in [-1, 1]. With a patch size `p > 1` each `p x p` patch of pixels is folded
//! into channels (PyTorch's `pixel_unshuffle`), so a 32 px image is a 16x16x12 sample: lossless,
//! fixed, and a quarter of the UNet's work at the finest level.

use super::vae::AutoencoderKL;
use anyhow::Result;
use candle_core::Tensor;
use candle_nn::ops::{pixel_shuffle, pixel_unshuffle};

pub enum ImageSpace {
    /// SD's latents: `scaling_factor * vae.encode(image)`.
    Latent(Box<AutoencoderKL>),
    /// The image itself in [-1, 1], its `patch x patch` patches folded into channels.
    Pixel { patch: usize },
}

impl ImageSpace {
    /// Pixels per sample position along a side (8 for SD1.5's VAE, the patch size in pixel
    /// space).
    pub fn scale_factor(&self) -> usize {
        match self {
            ImageSpace::Latent(vae) => vae.config.scale_factor(),
            ImageSpace::Pixel { patch } => *patch,
        }
    }

    /// Channels of a sample (the UNet's `in_channels`).
    pub fn channels(&self) -> usize {
        match self {
            ImageSpace::Latent(vae) => vae.config.latent_channels,
            ImageSpace::Pixel { patch } => 3 * patch * patch,
        }
    }

    /// Samples in the UNet's scale to images in (about) [-1, 1].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        match self {
            ImageSpace::Latent(vae) => vae.decode(&(z / vae.config.scaling_factor)?),
            ImageSpace::Pixel { patch: 1 } => Ok(z.clone()),
            ImageSpace::Pixel { patch } => Ok(pixel_shuffle(z, *patch)?),
        }
    }

    /// Images in [-1, 1] to the UNet's scale, by the posterior mean.
    pub fn encode_mean(&self, images: &Tensor) -> Result<Tensor> {
        let (mean, _) = self.posterior(images)?;
        Ok((mean * self.scaling_factor())?)
    }

    /// The posterior over unscaled samples: its mean and standard deviation (`None` in pixel
    /// space, where the image is its own sample).
    pub fn posterior(&self, images: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        match self {
            ImageSpace::Latent(vae) => {
                let d = vae.encode(images)?;
                Ok((d.mean, Some(d.std)))
            }
            ImageSpace::Pixel { patch: 1 } => Ok((images.clone(), None)),
            ImageSpace::Pixel { patch } => Ok((pixel_unshuffle(images, *patch)?, None)),
        }
    }

    /// What multiplies an unscaled sample into the UNet's scale.
    pub fn scaling_factor(&self) -> f64 {
        match self {
            ImageSpace::Latent(vae) => vae.config.scaling_factor,
            ImageSpace::Pixel { .. } => 1.0,
        }
    }

    /// "latent" or "pixel", for reports.
    pub fn name(&self) -> &'static str {
        match self {
            ImageSpace::Latent(_) => "latent",
            ImageSpace::Pixel { .. } => "pixel",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn pixel_space_round_trips_exactly() {
        let x = Tensor::arange(0f32, 2.0 * 3.0 * 4.0 * 4.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 4, 4))
            .unwrap();
        for patch in [1, 2, 4] {
            let s = ImageSpace::Pixel { patch };
            let z = s.encode_mean(&x).unwrap();
            assert_eq!(z.dims(), &[2, s.channels(), 4 / patch, 4 / patch]);
            let back = s.decode(&z).unwrap();
            let diff = (back - &x).unwrap().abs().unwrap().sum_all().unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "patch {patch}");
            assert!(s.posterior(&x).unwrap().1.is_none());
            assert_eq!((s.scale_factor(), s.scaling_factor()), (patch, 1.0));
        }
        // A 2x2 patch becomes 4 channels of one position, in PyTorch's pixel_unshuffle order.
        let z = ImageSpace::Pixel { patch: 2 }.encode_mean(&x).unwrap();
        let v: Vec<f32> = z
            .get(0)
            .unwrap()
            .narrow(0, 0, 4)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!([v[0], v[4], v[8], v[12]], [0.0, 1.0, 4.0, 5.0]);
    }
}
