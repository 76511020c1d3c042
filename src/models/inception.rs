//! pytorch-fid's Inception-v3 (`pytorch_fid/inception.py`, FID variant): the 2048-d pool3
//! features FID is computed on. Inference only: each BatchNorm (eval, eps 1e-3) is folded into
//! a per-channel scale and shift at load. The FID blocks differ from torchvision's: their
//! average pools exclude padding, and Mixed_7c's pool branch is a max pool.
//! Tensor names are those of `pt_inception-2015-12-05-6726825d.pth` (torchvision's).

use anyhow::Result;
use candle_core::{Device, Tensor, D};
use candle_nn::VarBuilder;

/// Conv (no bias) + BatchNorm (folded) + ReLU, with a (h, w) kernel and (h, w) padding.
struct BasicConv {
    weight: Tensor,
    scale: Tensor,
    shift: Tensor,
    stride: usize,
    pad: (usize, usize),
}

impl BasicConv {
    fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        k: (usize, usize),
        stride: usize,
        pad: (usize, usize),
    ) -> Result<Self> {
        let weight = vb.pp("conv").get((cout, cin, k.0, k.1), "weight")?;
        let bn = vb.pp("bn");
        let (w, b) = (bn.get(cout, "weight")?, bn.get(cout, "bias")?);
        let (mean, var) = (bn.get(cout, "running_mean")?, bn.get(cout, "running_var")?);
        let scale = (w / (var + 1e-3)?.sqrt()?)?;
        let shift = (b - (&mean * &scale)?)?;
        let as4 = |t: Tensor| t.reshape((1, cout, 1, 1));
        Ok(Self {
            weight,
            scale: as4(scale)?,
            shift: as4(shift)?,
            stride,
            pad,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        if self.pad.0 > 0 {
            x = x.pad_with_zeros(2, self.pad.0, self.pad.0)?;
        }
        if self.pad.1 > 0 {
            x = x.pad_with_zeros(3, self.pad.1, self.pad.1)?;
        }
        let y = x.conv2d(&self.weight, 0, self.stride, 1, 1)?;
        Ok(y.broadcast_mul(&self.scale)?
            .broadcast_add(&self.shift)?
            .relu()?)
    }
}

fn conv(
    vb: &VarBuilder,
    name: &str,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Result<BasicConv> {
    BasicConv::new(vb.pp(name), cin, cout, (k, k), stride, (pad, pad))
}

fn conv_hw(
    vb: &VarBuilder,
    name: &str,
    cin: usize,
    cout: usize,
    k: (usize, usize),
    pad: (usize, usize),
) -> Result<BasicConv> {
    BasicConv::new(vb.pp(name), cin, cout, k, 1, pad)
}

/// 3x3 average pool, stride 1, padding 1, not counting the padding (count_include_pad=False).
fn avg_pool_exclude_pad(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let sum = (x
        .pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .avg_pool2d_with_stride(3, 1)?
        * 9.0)?;
    let count =
        |i: usize, n: usize| (if i == 0 { 0 } else { 1 }) + 1 + (if i + 1 == n { 0 } else { 1 });
    let counts: Vec<f32> = (0..h)
        .flat_map(|i| (0..w).map(move |j| (count(i, h) * count(j, w)) as f32))
        .collect();
    let counts = Tensor::from_vec(counts, (1, 1, h, w), x.device())?.to_dtype(x.dtype())?;
    Ok(sum.broadcast_div(&counts)?)
}

/// 3x3 max pool, stride 1, padding 1 (zero padding equals -inf padding after a ReLU).
fn max_pool_pad1(x: &Tensor) -> Result<Tensor> {
    Ok(x.pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .max_pool2d_with_stride(3, 1)?)
}

struct InceptionA {
    b1: BasicConv,
    b5: [BasicConv; 2],
    b3: [BasicConv; 3],
    pool: BasicConv,
}

impl InceptionA {
    fn new(vb: VarBuilder, cin: usize, pool_features: usize) -> Result<Self> {
        Ok(Self {
            b1: conv(&vb, "branch1x1", cin, 64, 1, 1, 0)?,
            b5: [
                conv(&vb, "branch5x5_1", cin, 48, 1, 1, 0)?,
                conv(&vb, "branch5x5_2", 48, 64, 5, 1, 2)?,
            ],
            b3: [
                conv(&vb, "branch3x3dbl_1", cin, 64, 1, 1, 0)?,
                conv(&vb, "branch3x3dbl_2", 64, 96, 3, 1, 1)?,
                conv(&vb, "branch3x3dbl_3", 96, 96, 3, 1, 1)?,
            ],
            pool: conv(&vb, "branch_pool", cin, pool_features, 1, 1, 0)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let a = self.b1.forward(x)?;
        let b = self.b5[1].forward(&self.b5[0].forward(x)?)?;
        let c = self.b3[2].forward(&self.b3[1].forward(&self.b3[0].forward(x)?)?)?;
        let d = self.pool.forward(&avg_pool_exclude_pad(x)?)?;
        Ok(Tensor::cat(&[a, b, c, d], 1)?)
    }
}

struct InceptionB {
    b3: BasicConv,
    b3dbl: [BasicConv; 3],
}

impl InceptionB {
    fn new(vb: VarBuilder, cin: usize) -> Result<Self> {
        Ok(Self {
            b3: conv(&vb, "branch3x3", cin, 384, 3, 2, 0)?,
            b3dbl: [
                conv(&vb, "branch3x3dbl_1", cin, 64, 1, 1, 0)?,
                conv(&vb, "branch3x3dbl_2", 64, 96, 3, 1, 1)?,
                conv(&vb, "branch3x3dbl_3", 96, 96, 3, 2, 0)?,
            ],
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let a = self.b3.forward(x)?;
        let b = self.b3dbl[2].forward(&self.b3dbl[1].forward(&self.b3dbl[0].forward(x)?)?)?;
        let c = x.max_pool2d_with_stride(3, 2)?;
        Ok(Tensor::cat(&[a, b, c], 1)?)
    }
}

struct InceptionC {
    b1: BasicConv,
    b7: [BasicConv; 3],
    b7dbl: [BasicConv; 5],
    pool: BasicConv,
}

impl InceptionC {
    fn new(vb: VarBuilder, c7: usize) -> Result<Self> {
        let (cin, row, col) = (768, (1, 7), (7, 1));
        let (prow, pcol) = ((0, 3), (3, 0));
        Ok(Self {
            b1: conv(&vb, "branch1x1", cin, 192, 1, 1, 0)?,
            b7: [
                conv(&vb, "branch7x7_1", cin, c7, 1, 1, 0)?,
                conv_hw(&vb, "branch7x7_2", c7, c7, row, prow)?,
                conv_hw(&vb, "branch7x7_3", c7, 192, col, pcol)?,
            ],
            b7dbl: [
                conv(&vb, "branch7x7dbl_1", cin, c7, 1, 1, 0)?,
                conv_hw(&vb, "branch7x7dbl_2", c7, c7, col, pcol)?,
                conv_hw(&vb, "branch7x7dbl_3", c7, c7, row, prow)?,
                conv_hw(&vb, "branch7x7dbl_4", c7, c7, col, pcol)?,
                conv_hw(&vb, "branch7x7dbl_5", c7, 192, row, prow)?,
            ],
            pool: conv(&vb, "branch_pool", cin, 192, 1, 1, 0)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let chain = |convs: &[BasicConv]| -> Result<Tensor> {
            let mut y = x.clone();
            for c in convs {
                y = c.forward(&y)?;
            }
            Ok(y)
        };
        let a = self.b1.forward(x)?;
        let (b, c) = (chain(&self.b7)?, chain(&self.b7dbl)?);
        let d = self.pool.forward(&avg_pool_exclude_pad(x)?)?;
        Ok(Tensor::cat(&[a, b, c, d], 1)?)
    }
}

struct InceptionD {
    b3: [BasicConv; 2],
    b7x3: [BasicConv; 4],
}

impl InceptionD {
    fn new(vb: VarBuilder) -> Result<Self> {
        let cin = 768;
        Ok(Self {
            b3: [
                conv(&vb, "branch3x3_1", cin, 192, 1, 1, 0)?,
                conv(&vb, "branch3x3_2", 192, 320, 3, 2, 0)?,
            ],
            b7x3: [
                conv(&vb, "branch7x7x3_1", cin, 192, 1, 1, 0)?,
                conv_hw(&vb, "branch7x7x3_2", 192, 192, (1, 7), (0, 3))?,
                conv_hw(&vb, "branch7x7x3_3", 192, 192, (7, 1), (3, 0))?,
                conv(&vb, "branch7x7x3_4", 192, 192, 3, 2, 0)?,
            ],
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let a = self.b3[1].forward(&self.b3[0].forward(x)?)?;
        let mut b = x.clone();
        for c in &self.b7x3 {
            b = c.forward(&b)?;
        }
        let c = x.max_pool2d_with_stride(3, 2)?;
        Ok(Tensor::cat(&[a, b, c], 1)?)
    }
}

struct InceptionE {
    b1: BasicConv,
    b3_1: BasicConv,
    b3_2a: BasicConv,
    b3_2b: BasicConv,
    dbl_1: BasicConv,
    dbl_2: BasicConv,
    dbl_3a: BasicConv,
    dbl_3b: BasicConv,
    pool: BasicConv,
    /// Mixed_7c (FIDInceptionE_2) max-pools its pool branch; Mixed_7b averages.
    max_pool: bool,
}

impl InceptionE {
    fn new(vb: VarBuilder, cin: usize, max_pool: bool) -> Result<Self> {
        Ok(Self {
            b1: conv(&vb, "branch1x1", cin, 320, 1, 1, 0)?,
            b3_1: conv(&vb, "branch3x3_1", cin, 384, 1, 1, 0)?,
            b3_2a: conv_hw(&vb, "branch3x3_2a", 384, 384, (1, 3), (0, 1))?,
            b3_2b: conv_hw(&vb, "branch3x3_2b", 384, 384, (3, 1), (1, 0))?,
            dbl_1: conv(&vb, "branch3x3dbl_1", cin, 448, 1, 1, 0)?,
            dbl_2: conv(&vb, "branch3x3dbl_2", 448, 384, 3, 1, 1)?,
            dbl_3a: conv_hw(&vb, "branch3x3dbl_3a", 384, 384, (1, 3), (0, 1))?,
            dbl_3b: conv_hw(&vb, "branch3x3dbl_3b", 384, 384, (3, 1), (1, 0))?,
            pool: conv(&vb, "branch_pool", cin, 192, 1, 1, 0)?,
            max_pool,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let a = self.b1.forward(x)?;
        let t = self.b3_1.forward(x)?;
        let b = Tensor::cat(&[self.b3_2a.forward(&t)?, self.b3_2b.forward(&t)?], 1)?;
        let t = self.dbl_2.forward(&self.dbl_1.forward(x)?)?;
        let c = Tensor::cat(&[self.dbl_3a.forward(&t)?, self.dbl_3b.forward(&t)?], 1)?;
        let pooled = if self.max_pool {
            max_pool_pad1(x)?
        } else {
            avg_pool_exclude_pad(x)?
        };
        let d = self.pool.forward(&pooled)?;
        Ok(Tensor::cat(&[a, b, c, d], 1)?)
    }
}

/// The FID Inception network up to the 2048-d average-pooled features.
pub struct FidInception {
    stem: Vec<BasicConv>,
    stem2: Vec<BasicConv>,
    mixed_5: Vec<InceptionA>,
    mixed_6a: InceptionB,
    mixed_6: Vec<InceptionC>,
    mixed_7a: InceptionD,
    mixed_7b: InceptionE,
    mixed_7c: InceptionE,
}

impl FidInception {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            stem: vec![
                conv(&vb, "Conv2d_1a_3x3", 3, 32, 3, 2, 0)?,
                conv(&vb, "Conv2d_2a_3x3", 32, 32, 3, 1, 0)?,
                conv(&vb, "Conv2d_2b_3x3", 32, 64, 3, 1, 1)?,
            ],
            stem2: vec![
                conv(&vb, "Conv2d_3b_1x1", 64, 80, 1, 1, 0)?,
                conv(&vb, "Conv2d_4a_3x3", 80, 192, 3, 1, 0)?,
            ],
            mixed_5: vec![
                InceptionA::new(vb.pp("Mixed_5b"), 192, 32)?,
                InceptionA::new(vb.pp("Mixed_5c"), 256, 64)?,
                InceptionA::new(vb.pp("Mixed_5d"), 288, 64)?,
            ],
            mixed_6a: InceptionB::new(vb.pp("Mixed_6a"), 288)?,
            mixed_6: vec![
                InceptionC::new(vb.pp("Mixed_6b"), 128)?,
                InceptionC::new(vb.pp("Mixed_6c"), 160)?,
                InceptionC::new(vb.pp("Mixed_6d"), 160)?,
                InceptionC::new(vb.pp("Mixed_6e"), 192)?,
            ],
            mixed_7a: InceptionD::new(vb.pp("Mixed_7a"))?,
            mixed_7b: InceptionE::new(vb.pp("Mixed_7b"), 1280, false)?,
            mixed_7c: InceptionE::new(vb.pp("Mixed_7c"), 2048, true)?,
        })
    }

    /// `x`: (N, 3, 299, 299) already scaled to [-1, 1]. Returns (N, 2048).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for c in &self.stem {
            x = c.forward(&x)?;
        }
        x = x.max_pool2d_with_stride(3, 2)?;
        for c in &self.stem2 {
            x = c.forward(&x)?;
        }
        x = x.max_pool2d_with_stride(3, 2)?;
        for m in &self.mixed_5 {
            x = m.forward(&x)?;
        }
        x = self.mixed_6a.forward(&x)?;
        for m in &self.mixed_6 {
            x = m.forward(&x)?;
        }
        x = self.mixed_7a.forward(&x)?;
        x = self.mixed_7b.forward(&x)?;
        x = self.mixed_7c.forward(&x)?;
        Ok(x.flatten_from(2)?.mean(D::Minus1)?)
    }
}

/// pytorch-fid's input path: images in [0, 1], (N, 3, H, W), bilinearly resized to 299 x 299
/// (`align_corners=False`, no antialiasing, as `F.interpolate`), then scaled to [-1, 1].
pub fn fid_input(images: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = images.dims4()?;
    const S: usize = 299;
    let src = images
        .to_dtype(candle_core::DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let axis = |insize: usize| -> Vec<(usize, usize, f32)> {
        let scale = insize as f32 / S as f32;
        (0..S)
            .map(|o| {
                let s = (scale * (o as f32 + 0.5) - 0.5).max(0.0);
                let i0 = (s as usize).min(insize - 1);
                let i1 = if i0 + 1 < insize { i0 + 1 } else { i0 };
                (i0, i1, s - i0 as f32)
            })
            .collect()
    };
    let (ys, xs) = (axis(h), axis(w));
    let mut out = vec![0f32; n * c * S * S];
    for p in 0..n * c {
        let plane = &src[p * h * w..(p + 1) * h * w];
        for (oy, &(y0, y1, ly)) in ys.iter().enumerate() {
            for (ox, &(x0, x1, lx)) in xs.iter().enumerate() {
                let top = (1.0 - lx) * plane[y0 * w + x0] + lx * plane[y0 * w + x1];
                let bottom = (1.0 - lx) * plane[y1 * w + x0] + lx * plane[y1 * w + x1];
                out[p * S * S + oy * S + ox] = 2.0 * ((1.0 - ly) * top + ly * bottom) - 1.0;
            }
        }
    }
    Ok(Tensor::from_vec(out, (n, c, S, S), images.device())?)
}

/// The deterministic "integer hash" weights of `tests/fixtures/inception/README.md`: every value
/// exact in f32, so Rust and the Python fixture script agree bit for bit. Random weights of the
/// real architecture, for tests and benchmarks (FID needs the real `pt_inception` weights).
pub fn synthetic_weight(name: &str, shape: &[usize]) -> Vec<f32> {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        seed = (seed ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let bit_length = |x: u64| 64 - x.leading_zeros() as u64;
    let (offset, e, shift) = if name.ends_with(".conv.weight") {
        (
            0.0,
            bit_length(150_000 * (shape[1] * shape[2] * shape[3]) as u64) / 2,
            0,
        )
    } else if name == "fc.weight" {
        (0.0, bit_length(150_000 * 2048) / 2, 0)
    } else if name.ends_with(".bn.weight") {
        (1.0, 13, 0)
    } else if name.ends_with(".bn.running_var") {
        (1.0, 14, 1024)
    } else {
        (0.0, 13, 0)
    };
    let scale = 2f64.powi(-(e as i32)) as f32;
    (0..shape.iter().product::<usize>() as u64)
        .map(|i| {
            let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            offset + (((z >> 40) % 2049) as i64 - 1024 + shift) as f32 * scale
        })
        .collect()
}

/// A tensor's name and shape.
pub type NamedShape = (String, Vec<usize>);

/// A VarBuilder backend serving [`synthetic_weight`]s, remembering every tensor it made.
#[derive(Default, Clone)]
pub struct SyntheticWeights {
    pub made: std::sync::Arc<std::sync::Mutex<Vec<NamedShape>>>,
}

impl candle_nn::var_builder::SimpleBackend for SyntheticWeights {
    fn get(
        &self,
        s: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: candle_core::DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.made
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?
            .push((name.to_string(), s.dims().to_vec()));
        Tensor::from_vec(synthetic_weight(name, s.dims()), s, dev)?.to_dtype(dtype)
    }
    fn get_unchecked(
        &self,
        name: &str,
        _: candle_core::DType,
        _: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("synthetic weight `{name}` needs a shape")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

impl FidInception {
    /// The network with [`synthetic_weight`]s (and the record of the tensors it asked for).
    pub fn synthetic(device: &Device) -> Result<(Self, SyntheticWeights)> {
        let backend = SyntheticWeights::default();
        let vb = VarBuilder::from_backend(
            Box::new(backend.clone()),
            candle_core::DType::F32,
            device.clone(),
        );
        Ok((Self::new(vb)?, backend))
    }
}
