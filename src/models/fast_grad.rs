//! Convolution and per-channel scale and shift that avoid candle's slow CPU paths, forward and
//! backward.
//!
//! - candle 0.11.1's CPU convolution gathers each im2col tile element by element, with a bounds
//!   check per element. When training on the CPU in f32, `conv2d` here copies whole rows into
//!   the columns and multiplies per image (`im2col_conv2d`): 1.4-1.8x faster for the 16x16
//!   convolutions of the world UNet at batch 32 with up to 96 input channels, 1.2x at 128
//!   (`examples/convbench.rs`). Its values equal candle's up to rounding. Smaller images keep
//!   candle's convolution, which is as fast there.
//! - candle differentiates `conv2d` through `conv_transpose2d`, which its CPU backend runs as a
//!   direct loop of short dot products. Here the input's gradient is the forward convolution of
//!   the output gradient (zero-dilated for strided convolutions) with the flipped, transposed
//!   kernel: 1.9-2.4x faster for the 16x16 convolutions, the same at 4x4. The weight's gradient
//!   is the output gradient times the input's columns, one product for the batch (1.4-2.7x
//!   faster than candle's convolution of the input by the output gradient, at every size).
//! - A `(C,)` parameter broadcast over `(B, C, H, W)` gets its gradient from candle as one sum
//!   over axes 0, 2 and 3, which its CPU backend runs as a strided loop: 8.4 ms for a
//!   (32, 64, 16, 16) gradient, against 0.1 ms for the sum over the contiguous `H * W` and then
//!   the batch used here. Every conv bias and group-norm affine has one.
//!
//! Sampling, other devices and other dtypes use candle's ops (with the faster gradient on the
//! CPU). Measured on the world UNet in docs/performance.md.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Whether the fast backward applies: a CPU tensor and something that wants a gradient.
fn applies(x: &Tensor, p: &Tensor) -> bool {
    x.device().is_cpu() && (x.track_op() || p.track_op())
}

/// `x.conv2d(w, padding, stride, 1, 1)`, with the faster CPU gradient when one is needed (for
/// square kernels larger than the padding: every convolution of SD's UNet and VAE). When training
/// on the CPU in f32 the value itself comes from `im2col_conv2d`. Sampling keeps candle's
/// convolution: the im2col one sampled the world model no faster (80 images, DDIM 10 steps,
/// guidance 5, batch 32: 1.03x, within the noise; 2026-11-27). Both give an image the same
/// bytes in any batch.
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let (_, _, kh, kw) = w.dims4()?;
    if kh != kw || padding >= kh {
        return x.conv2d(w, padding, stride, 1, 1);
    }
    if !applies(x, w) {
        return x.conv2d(w, padding, stride, 1, 1);
    }
    let (xd, wd) = (x.detach(), w.detach());
    let y = if is_cpu_f32(x, w) {
        im2col_conv2d(&xd, &wd, padding, stride)?
    } else {
        xd.conv2d(&wd, padding, stride, 1, 1)?
    };
    y.apply_op3(x, w, Grad::Conv { padding, stride })
}

fn is_cpu_f32(x: &Tensor, w: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32
}

/// How `im2col` lays out its columns.
#[derive(Clone, Copy, PartialEq)]
enum Cols {
    /// `(B, C * k * k, OH * OW)`: one matrix per image, for the forward product.
    PerImage,
    /// `(C * k * k, B * OH * OW)`: one matrix for the batch, for the weight's gradient.
    Batch,
}

/// The columns of a convolution with a square `k`x`k` kernel: row `(c, i, j)` of image `b`
/// holds, for every output position, the input at offset `(i, j)` of its window (zero in the
/// padding), laid out as `layout` says. Rows are filled in parallel, and at stride 1 each
/// output row is one slice copy.
fn im2col(
    x: &Tensor,
    k: usize,
    padding: usize,
    stride: usize,
    layout: Cols,
) -> Result<(Tensor, usize, usize)> {
    let (b, c, h, w) = x.dims4()?;
    let (oh, ow) = (
        (h + 2 * padding - k) / stride + 1,
        (w + 2 * padding - k) / stride + 1,
    );
    let src = x.flatten_all()?.to_vec1::<f32>()?;
    let rows = c * k * k;
    let mut cols = vec![0f32; b * rows * oh * ow];
    cols.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(i, row)| {
            let (bi, r) = match layout {
                Cols::PerImage => (i / rows, i % rows),
                Cols::Batch => (i % b, i / b),
            };
            let (ci, ki, kj) = (r / (k * k), (r / k) % k, r % k);
            // The output columns whose input column `ox * stride + kj - padding` lies inside.
            let lo = padding.saturating_sub(kj).div_ceil(stride);
            let hi = (w + padding).saturating_sub(kj).div_ceil(stride).min(ow);
            if lo >= hi {
                return;
            }
            let image = &src[(bi * c + ci) * h * w..][..h * w];
            for (oy, dst) in row.chunks_exact_mut(ow).enumerate() {
                let Some(iy) = (oy * stride + ki).checked_sub(padding).filter(|&y| y < h) else {
                    continue;
                };
                let src_row = &image[iy * w..][..w];
                if stride == 1 {
                    dst[lo..hi].copy_from_slice(&src_row[lo + kj - padding..hi + kj - padding]);
                } else {
                    for (ox, d) in dst.iter_mut().enumerate().take(hi).skip(lo) {
                        *d = src_row[ox * stride + kj - padding];
                    }
                }
            }
        });
    let cols = match layout {
        Cols::PerImage => Tensor::from_vec(cols, (b, rows, oh * ow), x.device())?,
        Cols::Batch => Tensor::from_vec(cols, (rows, b * oh * ow), x.device())?,
    };
    Ok((cols, oh, ow))
}

/// `x.conv2d(w, padding, stride, 1, 1)` for an f32 CPU tensor: per image, the kernel as a
/// `(C_out, C_in * k * k)` matrix times the image's columns, where an image has at least 256
/// output positions; candle's own convolution below that, where neither is faster
/// (`examples/convbench.rs`).
pub fn im2col_conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let (b, _, h, wid) = x.dims4()?;
    let (co, ci, k, _) = w.dims4()?;
    let out = |n: usize| (n + 2 * padding - k) / stride + 1;
    if out(h) * out(wid) < 256 {
        return x.conv2d(w, padding, stride, 1, 1);
    }
    let (cols, oh, ow) = im2col(x, k, padding, stride, Cols::PerImage)?;
    w.reshape((co, ci * k * k))?
        .broadcast_matmul(&cols)?
        .reshape((b, co, oh, ow))
}

/// `x * scale` with `scale` of shape `(C,)` along axis 1 of `x` (rank 3 or more).
pub fn channel_scale(x: &Tensor, scale: &Tensor) -> Result<Tensor> {
    let s = scale.reshape(channel_dims(x)?)?;
    if !applies(x, scale) {
        return x.broadcast_mul(&s);
    }
    let y = x.detach().broadcast_mul(&s.detach())?;
    y.apply_op3(x, scale, Grad::ChannelScale)
}

/// `x + shift` with `shift` of shape `(C,)` along axis 1 of `x` (rank 3 or more).
pub fn channel_shift(x: &Tensor, shift: &Tensor) -> Result<Tensor> {
    let b = shift.reshape(channel_dims(x)?)?;
    if !applies(x, shift) {
        return x.broadcast_add(&b);
    }
    let y = x.detach().broadcast_add(&b.detach())?;
    y.apply_op3(x, shift, Grad::ChannelShift)
}

/// `[1, C, 1, ...]` for `x` of shape `[B, C, ...]`.
fn channel_dims(x: &Tensor) -> Result<Vec<usize>> {
    if x.rank() < 3 {
        candle_core::bail!("a per-channel parameter needs an input of rank 3 or more");
    }
    let mut dims = vec![1; x.rank()];
    dims[1] = x.dim(1)?;
    Ok(dims)
}

/// `g` of shape `[B, C, ...]` summed to `(C,)`: over the contiguous trailing axes first.
fn sum_to_channels(g: &Tensor) -> Result<Tensor> {
    let (b, c) = (g.dim(0)?, g.dim(1)?);
    g.contiguous()?.reshape((b, c, ()))?.sum(2)?.sum(0)
}

/// Passes an op's output `(y, x, p) -> y` through unchanged, and gives the op's input `x` and
/// parameter `p` their gradients in `bwd`.
enum Grad {
    /// `y = conv2d(x, p)`.
    Conv { padding: usize, stride: usize },
    /// `y = x * p` per channel.
    ChannelScale,
    /// `y = x + p` per channel.
    ChannelShift,
}

impl CustomOp3 for Grad {
    fn name(&self) -> &'static str {
        match self {
            Grad::Conv { .. } => "conv2d-grad",
            Grad::ChannelScale => "channel-scale-grad",
            Grad::ChannelShift => "channel-shift-grad",
        }
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        yl: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if !yl.is_contiguous() || yl.start_offset() != 0 {
            candle_core::bail!("{}: the op's output must be contiguous", self.name());
        }
        Ok((y.try_clone(yl)?, yl.shape().clone()))
    }

    fn bwd(
        &self,
        _y: &Tensor,
        x: &Tensor,
        p: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (xd, pd, g) = (x.detach(), p.detach(), grad.detach());
        let (gx, gp) = match self {
            Grad::Conv { padding, stride } => (
                x.track_op()
                    .then(|| input_grad(&g, &pd, xd.dims4()?, *padding, *stride))
                    .transpose()?,
                p.track_op()
                    .then(|| weight_grad(&xd, &g, pd.dims4()?, *padding, *stride))
                    .transpose()?,
            ),
            Grad::ChannelScale => (
                x.track_op()
                    .then(|| g.broadcast_mul(&pd.reshape(channel_dims(&g)?)?))
                    .transpose()?,
                p.track_op()
                    .then(|| sum_to_channels(&(&g * &xd)?))
                    .transpose()?,
            ),
            Grad::ChannelShift => (
                x.track_op().then_some(g.clone()),
                p.track_op().then(|| sum_to_channels(&g)).transpose()?,
            ),
        };
        Ok((None, gx, gp))
    }
}

/// The input's gradient: the output gradient, with `stride - 1` zeros after each element along
/// both spatial axes (cut to the length the input needs), convolved with the kernel flipped in
/// space and with its channel axes swapped, padded by `k - 1 - padding`.
fn input_grad(
    g: &Tensor,
    w: &Tensor,
    (_, _, h, wid): (usize, usize, usize, usize),
    padding: usize,
    stride: usize,
) -> Result<Tensor> {
    let k = w.dim(2)?;
    let (need_h, need_w) = (h + 2 * padding + 1 - k, wid + 2 * padding + 1 - k);
    let g = dilate(&dilate(g, 3, stride, need_w)?, 2, stride, need_h)?;
    let rev = Tensor::new((0..k as u32).rev().collect::<Vec<_>>(), w.device())?;
    let flipped = w
        .index_select(&rev, 2)?
        .index_select(&rev, 3)?
        .transpose(0, 1)?
        .contiguous()?;
    if is_cpu_f32(&g, &flipped) {
        im2col_conv2d(&g, &flipped, k - 1 - padding, 1)
    } else {
        g.conv2d(&flipped, k - 1 - padding, 1, 1, 1)
    }
}

/// Spreads axis `dim` of `g` by `stride` (the original elements at multiples of `stride`, zeros
/// between) and keeps the first `len` positions.
fn dilate(g: &Tensor, dim: usize, stride: usize, len: usize) -> Result<Tensor> {
    let spread = if stride == 1 {
        g.clone()
    } else {
        let mut parts = vec![g.clone()];
        parts.extend(std::iter::repeat_n(g.zeros_like()?, stride - 1));
        let mut dims = g.dims().to_vec();
        dims[dim] *= stride;
        Tensor::stack(&parts, dim + 1)?.reshape(dims)?
    };
    spread.narrow(dim, 0, len)
}

/// The weight's gradient of `conv2d(x, w)` for the output gradient `g`. On the CPU in f32, `g`
/// times the input's columns (transposed), one product for the batch; elsewhere as candle
/// computes it, the input with batch and channels swapped, convolved with the output gradient
/// likewise swapped (the stride becomes a dilation).
pub fn weight_grad(
    x: &Tensor,
    g: &Tensor,
    (co, ci, kh, kw): (usize, usize, usize, usize),
    padding: usize,
    stride: usize,
) -> Result<Tensor> {
    if is_cpu_f32(x, g) {
        let (cols, _, _) = im2col(x, kh, padding, stride, Cols::Batch)?;
        return g
            .transpose(0, 1)?
            .contiguous()?
            .flatten_from(1)?
            .matmul(&cols.t()?)?
            .reshape((co, ci, kh, kw));
    }
    x.transpose(0, 1)?
        .conv2d(&g.transpose(0, 1)?, padding, 1, stride, 1)?
        .transpose(0, 1)?
        .narrow(2, 0, kh)?
        .narrow(3, 0, kw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// The gradients of x and w are the adjoints of the convolution: for any x' and w',
    /// <conv(x', w), G> = <x', dx> and <conv(x, w'), G> = <w', dw>, where G weighs the outputs.
    /// Checked for every kernel, stride and padding the models use, on odd and non-square
    /// inputs, and against candle's own gradients where candle computes them.
    #[test]
    fn gradients_are_the_adjoints_and_match_candles() {
        let d = Device::Cpu;
        let cases = [
            // (k, stride, padding, h, w)
            (3, 1, 1, 8, 8),
            (3, 2, 1, 8, 8),
            (3, 2, 1, 9, 6),
            (1, 1, 0, 5, 7),
            (4, 4, 0, 8, 12),
            (3, 1, 0, 7, 7),
            (3, 2, 0, 7, 8),
            // 256 output positions and more: the im2col forward.
            (3, 1, 1, 16, 16),
            (3, 2, 1, 32, 32),
        ];
        let dot = |a: &Tensor, b: &Tensor| -> f32 {
            (a * b).unwrap().sum_all().unwrap().to_scalar().unwrap()
        };
        for (i, &(k, s, p, h, wid)) in cases.iter().enumerate() {
            let x = Var::randn(0f32, 1., (2, 3, h, wid), &d).unwrap();
            let w = Var::randn(0f32, 0.5, (4, 3, k, k), &d).unwrap();
            let b = Var::randn(0f32, 0.5, 4, &d).unwrap();
            let y = conv2d(x.as_tensor(), w.as_tensor(), p, s).unwrap();
            let y = channel_shift(&y, b.as_tensor()).unwrap();
            let plain = |x: &Tensor, w: &Tensor| {
                x.conv2d(w, p, s, 1, 1)
                    .unwrap()
                    .broadcast_add(&b.reshape((1, 4, 1, 1)).unwrap())
                    .unwrap()
            };
            let reference = plain(x.as_tensor(), w.as_tensor());
            assert_eq!(y.dims(), reference.dims(), "case {i}");
            let diff = max_diff(&y, &reference);
            assert!(diff <= 1e-5, "case {i}: forward differs by {diff}");
            // Weigh every output differently, so a misplaced gradient shows.
            let g = Tensor::randn(0f32, 1., y.dims(), &d).unwrap();
            let ours = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let (gx, gw) = (ours.get(&x).unwrap(), ours.get(&w).unwrap());
            let x2 = Tensor::randn(0f32, 1., x.dims(), &d).unwrap();
            let w2 = Tensor::randn(0f32, 1., w.dims(), &d).unwrap();
            let lin = |a: Tensor| a.conv2d(w.as_tensor(), p, s, 1, 1).unwrap();
            let (lhs_x, rhs_x) = (dot(&lin(x2.clone()), &g), dot(&x2, gx));
            let lhs_w = dot(&x.conv2d(&w2, p, s, 1, 1).unwrap(), &g);
            let rhs_w = dot(&w2, gw);
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * a.abs().max(1.0);
            let what = format!("case {i} (k {k}, stride {s}, padding {p}, {h}x{wid})");
            assert!(close(lhs_x, rhs_x), "{what}: dx {rhs_x} vs {lhs_x}");
            assert!(close(lhs_w, rhs_w), "{what}: dw {rhs_w} vs {lhs_w}");
            // candle 0.11.1's own backward takes the output padding of both axes from the
            // height, so it fails when they differ (cases 2 and 6); compare wherever it runs.
            let Ok(theirs) = (reference * &g).unwrap().sum_all().unwrap().backward() else {
                assert!([2, 6].contains(&i), "{what}: candle's backward failed");
                continue;
            };
            for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
                let (a, r) = (ours.get(v).unwrap(), theirs.get(v).unwrap());
                assert_eq!(a.dims(), r.dims(), "{what}: d{name}");
                let diff = max_diff(a, r);
                assert!(diff <= 1e-4, "{what}: d{name} differs by {diff}");
            }
        }
    }

    /// Per-channel scale and shift give the gradients candle's broadcast ops give, on rank 3
    /// and rank 4 inputs.
    #[test]
    fn channel_scale_and_shift_match_candles_broadcasts() {
        let d = Device::Cpu;
        for dims in [vec![3, 4, 5, 6], vec![2, 4, 7]] {
            let x = Var::randn(0f32, 1., dims.as_slice(), &d).unwrap();
            let s = Var::randn(0f32, 1., 4, &d).unwrap();
            let b = Var::randn(0f32, 1., 4, &d).unwrap();
            let g = Tensor::randn(0f32, 1., dims.as_slice(), &d).unwrap();
            let ours = channel_shift(&channel_scale(&x, &s).unwrap(), &b).unwrap();
            let shape = channel_dims(&x).unwrap();
            let theirs = x
                .broadcast_mul(&s.reshape(shape.clone()).unwrap())
                .unwrap()
                .broadcast_add(&b.reshape(shape).unwrap())
                .unwrap();
            assert_eq!(max_diff(&ours, &theirs), 0.0);
            let go = (ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let gt = (theirs * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &s, &b] {
                let diff = max_diff(go.get(v).unwrap(), gt.get(v).unwrap());
                assert!(diff <= 1e-5, "{dims:?}: gradients differ by {diff}");
            }
        }
    }

    /// Without a gradient to compute (sampling), the layer is candle's convolution itself; the
    /// im2col convolution equals candle's for every kernel, stride and padding, on images with
    /// 256 or more output positions (where it runs) and below.
    #[test]
    fn without_gradients_the_convolution_is_candles() {
        let d = Device::Cpu;
        let x = Tensor::randn(0f32, 1., (1, 2, 5, 5), &d).unwrap();
        let w = Tensor::randn(0f32, 1., (3, 2, 3, 3), &d).unwrap();
        let y = conv2d(&x, &w, 1, 2).unwrap();
        assert!(!y.track_op());
        assert_eq!(max_diff(&y, &x.conv2d(&w, 1, 2, 1, 1).unwrap()), 0.0);
        // (batch, c_in, c_out, k, stride, padding, h, w)
        for (b, ci, co, k, s, p, h, wid) in [
            (3, 5, 7, 3, 1, 1, 16, 17),
            (2, 4, 3, 3, 2, 1, 33, 34),
            (1, 3, 2, 3, 3, 2, 48, 50),
            (2, 6, 4, 1, 1, 0, 16, 16),
            (2, 3, 3, 4, 4, 0, 64, 68),
            (1, 2, 2, 5, 1, 2, 16, 16),
            (2, 3, 4, 3, 1, 0, 18, 18),
            (2, 4, 3, 3, 2, 1, 9, 6),
        ] {
            let x = Tensor::randn(0f32, 1., (b, ci, h, wid), &d).unwrap();
            let w = Tensor::randn(0f32, 1., (co, ci, k, k), &d).unwrap();
            let ours = im2col_conv2d(&x, &w, p, s).unwrap();
            let theirs = x.conv2d(&w, p, s, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let diff = max_diff(&ours, &theirs);
            assert!(
                diff <= 1e-4,
                "k {k} stride {s} padding {p}: differs by {diff}"
            );
        }
    }
}
