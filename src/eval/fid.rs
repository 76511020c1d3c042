//! FID as pytorch-fid computes it: pool3 features of the FID Inception over two image sets,
//! their statistics (cacheable, like `--save-stats`), and the Fréchet distance. The weights are
//! pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` converted once with
//! `python scripts/convert_fid_inception.py pt_inception-2015-12-05-6726825d.pth fid_inception.safetensors`.

use super::frechet::Stats;
use crate::io::image_source::{images_in, ImageSource};
use crate::models::inception::{fid_input, FidInception};
use crate::weights::{read_safetensors, save_safetensors, Mode, ParamStore};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use nalgebra::{DMatrix, DVector};
use std::collections::HashMap;
use std::path::Path;

pub struct FidExtractor {
    model: FidInception,
    device: Device,
}

impl FidExtractor {
    pub fn load(weights: &Path, device: &Device) -> Result<Self> {
        let params = ParamStore::from_file(
            weights,
            "FID Inception weights",
            Mode::Frozen,
            DType::F32,
            device,
        )?;
        let model = FidInception::new(params.var_builder()).with_context(|| format!("{} is not pytorch-fid's Inception (convert it with scripts/convert_fid_inception.py)", weights.display()))?;
        Ok(Self {
            model,
            device: device.clone(),
        })
    }

    pub fn from_model(model: FidInception, device: &Device) -> Self {
        Self {
            model,
            device: device.clone(),
        }
    }

    /// pool3 features of image files (any size; read as RGB, scaled to [0, 1]).
    pub fn features(
        &self,
        files: &[ImageSource],
        batch_size: usize,
        mut on_batch: impl FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(files.len());
        for chunk in files.chunks(batch_size.max(1)) {
            let inputs = chunk
                .iter()
                .map(|f| {
                    let img = f.decode_rgb()?;
                    let (w, h) = img.dimensions();
                    let x: Vec<f32> = img.as_raw().iter().map(|v| *v as f32 / 255.0).collect();
                    let t = Tensor::from_vec(x, (h as usize, w as usize, 3), &Device::Cpu)?
                        .permute((2, 0, 1))?
                        .unsqueeze(0)?;
                    fid_input(&t)
                })
                .collect::<Result<Vec<_>>>()?;
            let x = Tensor::cat(&inputs, 0)?.to_device(&self.device)?;
            out.extend(
                self.model
                    .forward(&x)?
                    .to_dtype(DType::F32)?
                    .to_vec2::<f32>()?,
            );
            on_batch(chunk.len());
        }
        Ok(out)
    }
}

/// The images of a reference set: a folder of images, or of webdataset `.tar` shards.
pub fn image_files(dir: &Path) -> Result<Vec<ImageSource>> {
    let files = images_in(dir)?;
    if files.is_empty() {
        bail!(
            "{}: no images (png, jpg, webp, bmp) and no .tar shards with images for FID",
            dir.display()
        );
    }
    Ok(files)
}

pub fn save_stats(stats: &Stats, path: &Path) -> Result<()> {
    let d = stats.mu.len();
    let t: HashMap<String, Tensor> = HashMap::from([
        (
            "mu".to_string(),
            Tensor::from_slice(stats.mu.as_slice(), d, &Device::Cpu)?,
        ),
        (
            "sigma".to_string(),
            Tensor::from_vec(
                stats.sigma.transpose().as_slice().to_vec(),
                (d, d),
                &Device::Cpu,
            )?,
        ),
        (
            "n".to_string(),
            Tensor::new(&[stats.n as f64], &Device::Cpu)?,
        ),
    ]);
    save_safetensors(&t, path)
}

/// FID statistics from our safetensors file, or from pytorch-fid's `--save-stats` `.npz`.
pub fn load_stats(path: &Path) -> Result<Stats> {
    if path.extension().is_some_and(|e| e == "npz") {
        let a = crate::io::npy::read_npz(path)?;
        let get = |k: &str| {
            a.get(k).with_context(|| {
                format!("{}: not pytorch-fid statistics (no `{k}`)", path.display())
            })
        };
        let (mu, sigma) = (get("mu")?, get("sigma")?);
        let d = mu.data.len();
        if sigma.shape != [d, d] {
            bail!(
                "{}: sigma has shape {:?}, expected [{d}, {d}]",
                path.display(),
                sigma.shape
            );
        }
        // pytorch-fid does not store the sample count.
        return Ok(Stats {
            mu: DVector::from_vec(mu.data.clone()),
            sigma: DMatrix::from_row_slice(d, d, &sigma.data),
            n: 0,
            centred: None,
        });
    }
    let t = read_safetensors(path)?;
    let get = |k: &str| {
        t.get(k)
            .with_context(|| format!("{}: not an FID statistics file (no `{k}`)", path.display()))
    };
    let mu: Vec<f64> = get("mu")?.to_dtype(DType::F64)?.to_vec1()?;
    let sigma: Vec<Vec<f64>> = get("sigma")?.to_dtype(DType::F64)?.to_vec2()?;
    let n = get("n")?.to_dtype(DType::F64)?.to_vec1::<f64>()?[0] as usize;
    let d = mu.len();
    Ok(Stats {
        mu: DVector::from_vec(mu),
        sigma: DMatrix::from_fn(d, d, |i, j| sigma[i][j]),
        n,
        centred: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip() {
        let rows: Vec<Vec<f32>> = (0..5)
            .map(|i| vec![i as f32, (i * i) as f32, 1.0 - i as f32])
            .collect();
        let s = Stats::from_features(&rows).unwrap();
        let dir = tempfile::tempdir().unwrap();
        save_stats(&s, &dir.path().join("s.safetensors")).unwrap();
        let back = load_stats(&dir.path().join("s.safetensors")).unwrap();
        assert_eq!(back.n, 5);
        assert!((back.sigma - s.sigma).amax() == 0.0 && (back.mu - s.mu).amax() == 0.0);
    }
}
