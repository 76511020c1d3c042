//! Differentiable building blocks shared by the UNet, the VAE and CLIP.
//!
//! candle-nn's fused `LayerNorm` and `softmax_last_dim` have no backward pass (gradients to the
//! norm weights and to Q/K silently vanish), so the norms and attention here are written with
//! primitive ops, every one of which candle can differentiate.

use crate::models::fast_grad::{channel_scale, channel_shift};
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Conv2dConfig, Init, VarBuilder};

/// LayerNorm over the last dimension, in f32 internally, with a backward pass.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = upcast(x)?;
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .to_dtype(dtype)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

fn upcast(x: &Tensor) -> Result<Tensor> {
    match x.dtype() {
        DType::F16 | DType::BF16 => x.to_dtype(DType::F32),
        _ => Ok(x.clone()),
    }
}

/// GroupNorm as candle-nn computes it (f32 inside for half inputs), with its per-channel affine
/// through `fast_grad` (a faster gradient on the CPU).
#[derive(Debug, Clone)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

pub fn group_norm(groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> Result<GroupNorm> {
    if groups == 0 || !channels.is_multiple_of(groups) {
        candle_core::bail!("group norm: {channels} channels do not split into {groups} groups");
    }
    let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
    let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
    Ok(GroupNorm {
        weight,
        bias,
        groups,
        eps,
    })
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        if dims.len() < 3 || dims[1] != self.weight.dim(0)? {
            candle_core::bail!(
                "group norm over {} channels got an input of shape {dims:?}",
                self.weight.dim(0)?
            );
        }
        let dtype = x.dtype();
        let hidden = x.elem_count() / (dims[0] * self.groups);
        let x = upcast(&x.reshape((dims[0], self.groups, hidden))?)?;
        let mean = (x.sum_keepdim(2)? / hidden as f64)?;
        let x = x.broadcast_sub(&mean)?;
        let var = (x.sqr()?.sum_keepdim(2)? / hidden as f64)?;
        let normed = x
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .to_dtype(dtype)?
            .reshape(dims)?;
        channel_shift(&channel_scale(&normed, &self.weight)?, &self.bias)
    }
}

/// A 2-D convolution in PyTorch's weight layout `(c_out, c_in, k, k)`, through `fast_grad` (a
/// faster gradient on the CPU).
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    padding: usize,
    stride: usize,
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = crate::models::fast_grad::conv2d(x, &self.weight, self.padding, self.stride)?;
        match &self.bias {
            None => Ok(y),
            Some(b) => channel_shift(&y, b),
        }
    }
}

pub fn conv2d(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder,
) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding,
        stride,
        ..Default::default()
    };
    // candle-nn's constructor, for its initialisation and tensor names.
    let conv = candle_nn::conv2d(cin, cout, k, cfg, vb)?;
    Ok(Conv2d {
        weight: conv.weight().clone(),
        bias: conv.bias().cloned(),
        padding,
        stride,
    })
}

/// A linear layer that makes its input contiguous first: candle 0.11.1's batched matmul gives
/// wrong results for a transposed (B, N, C) input against the broadcast weight that
/// `candle_nn::Linear` uses (measured: 1.4% relative error in the VAE attention; see the
/// regression test below).
#[derive(Debug, Clone)]
pub struct Linear(candle_nn::Linear);

impl Linear {
    pub fn weight(&self) -> &Tensor {
        self.0.weight()
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.0.bias()
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // A (B, C) input is one matrix product of B rows, and the CPU gemm picks its blocking
        // by B: a row's result moved by up to 5e-6 between a batch of one and of eight, enough
        // for a resumed `generate` to write other PNG bytes. Without gradients (sampling) each
        // row goes through alone, so a row's value never depends on the batch around it.
        let frozen = !x.track_op() && !self.0.weight().track_op();
        if x.rank() == 2 && x.dim(0)? > 1 && x.device().is_cpu() && frozen {
            let rows = (0..x.dim(0)?)
                .map(|i| self.0.forward(&x.narrow(0, i, 1)?.contiguous()?))
                .collect::<Result<Vec<_>>>()?;
            return Tensor::cat(&rows, 0);
        }
        if x.is_contiguous() {
            self.0.forward(x)
        } else {
            self.0.forward(&x.contiguous()?)
        }
    }
}

pub fn linear(cin: usize, cout: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    Ok(Linear(candle_nn::linear_b(cin, cout, bias, vb)?))
}

/// Softmax over the last dimension from primitive ops (differentiable), computed in f32.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    candle_nn::ops::softmax(&upcast(x)?, D::Minus1)?.to_dtype(dtype)
}

/// x * sigmoid(1.702 x), CLIP's activation.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    let s = ((x * -1.702)?.exp()? + 1.0)?.recip()?;
    x * s
}

/// x * sigmoid(x), written from primitives so it has a backward pass on every backend.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    x.silu()
}

/// Multi-head scaled-dot-product attention on `(B, N, heads*d)` inputs; `causal` masks the future.
/// f32 on the CPU takes the fused op (`fused_attention`); everything else the unfused path.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
    if super::fused_attention::applies(q) {
        return super::fused_attention::fused_attention(q, k, v, heads, causal);
    }
    unfused_attention(q, k, v, heads, causal)
}

/// Attention from primitive ops: matmuls and a softmax, the score matrix materialised.
pub fn unfused_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
) -> Result<Tensor> {
    let (b, n, c) = q.dims3()?;
    let m = k.dim(1)?;
    let d = c / heads;
    let split = |t: &Tensor, len: usize| -> Result<Tensor> {
        t.reshape((b, len, heads, d))?.transpose(1, 2)?.contiguous()
    };
    let (q, k, v) = (split(q, n)?, split(k, m)?, split(v, m)?);
    let scale = 1.0 / (d as f64).sqrt();
    let mut scores = (q.matmul(&k.t()?)? * scale)?;
    if causal {
        let mask: Vec<f32> = (0..n)
            .flat_map(|i| (0..m).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (n, m), q.device())?.to_dtype(scores.dtype())?;
        scores = scores.broadcast_add(&mask)?;
    }
    let probs = softmax_last(&scores)?;
    probs.matmul(&v)?.transpose(1, 2)?.reshape((b, n, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// A row of a (B, C) input gets the same bytes in any batch: the time embedding of a
    /// sample must not depend on the other samples drawn with it. Before the row-by-row path,
    /// these shapes moved a row by up to 5e-6 between a batch of one and of eight.
    #[test]
    fn linear_rows_do_not_depend_on_the_batch() {
        let d = Device::Cpu;
        for (cin, cout, b) in [(320, 1280, 8), (32, 128, 4), (128, 128, 4)] {
            let vb = VarBuilder::from_tensors(
                [
                    (
                        "weight".to_string(),
                        Tensor::randn(0f32, 0.1, (cout, cin), &d).unwrap(),
                    ),
                    (
                        "bias".to_string(),
                        Tensor::randn(0f32, 0.1, cout, &d).unwrap(),
                    ),
                ]
                .into_iter()
                .collect(),
                DType::F32,
                &d,
            );
            let lin = linear(cin, cout, true, vb).unwrap();
            let x = Tensor::randn(0f32, 1., (b, cin), &d).unwrap();
            let all = lin.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            for (i, row) in all.iter().enumerate() {
                let alone = lin.forward(&x.narrow(0, i, 1).unwrap()).unwrap();
                assert_eq!(&alone.to_vec2::<f32>().unwrap()[0], row, "row {i} of {b}");
            }
        }
    }

    #[test]
    fn layer_norm_has_gradients_for_weight_and_bias() {
        let store = crate::weights::ParamStore::random(
            0,
            "t",
            crate::weights::Mode::Trainable,
            DType::F32,
            &Device::Cpu,
        );
        let ln = LayerNorm::new(4, 1e-5, store.var_builder().pp("ln")).unwrap();
        let x = Var::new(&[[1f32, 2., 3., 5.], [0., -1., 2., 4.]], &Device::Cpu).unwrap();
        let y = ln.forward(x.as_tensor()).unwrap();
        let loss = (y * Tensor::new(&[[1f32, 2., 3., 4.], [4., 3., 2., 1.]], &Device::Cpu)
            .unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
        let grads = loss.backward().unwrap();
        for (name, var) in store.named_vars() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no grad for {name}"));
            assert!(
                g.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    > 0.0,
                "{name}"
            );
        }
        assert!(grads.get(x.as_tensor()).is_some());
    }

    #[test]
    fn linear_on_transposed_input_matches_contiguous() {
        // A transposed (B, N, C) input with B > 1, as the VAE's attention produces it.
        let dev = Device::Cpu;
        let store = crate::weights::ParamStore::random(
            1,
            "t",
            crate::weights::Mode::Frozen,
            DType::F32,
            &dev,
        );
        let l = linear(8, 8, true, store.var_builder().pp("l")).unwrap();
        let x = Tensor::randn(0f32, 1., (2, 8, 6), &dev)
            .unwrap()
            .transpose(1, 2)
            .unwrap();
        let ours = l.forward(&x).unwrap();
        let bias = store
            .named_tensors()
            .into_iter()
            .find(|(k, _)| k == "l.bias")
            .unwrap()
            .1;
        let flat = x.contiguous().unwrap().reshape((12, 8)).unwrap();
        let reference = flat
            .matmul(&l.weight().t().unwrap())
            .unwrap()
            .broadcast_add(&bias)
            .unwrap()
            .reshape((2, 6, 8))
            .unwrap();
        let d = (ours - reference)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5, "transposed input changed the result by {d}");
    }

    #[test]
    fn causal_attention_ignores_the_future() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1., (1, 3, 4), &dev).unwrap();
        let k = Tensor::randn(0f32, 1., (1, 3, 4), &dev).unwrap();
        let v = Tensor::randn(0f32, 1., (1, 3, 4), &dev).unwrap();
        let full = attention(&q, &k, &v, 2, true).unwrap();
        let v2 = v
            .slice_assign(
                &[0..1, 2..3, 0..4],
                &Tensor::zeros((1, 1, 4), DType::F32, &dev).unwrap(),
            )
            .unwrap();
        let changed = attention(&q, &k, &v2, 2, true).unwrap();
        let a = full
            .narrow(1, 0, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = changed
            .narrow(1, 0, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(a, b);
    }
}
