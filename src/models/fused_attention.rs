//! Fused multi-head attention for f32 on the CPU, forward and backward, as a candle custom op.
//!
//! Never materialises the (N, M) score matrix: each query row computes its scores, softmax and
//! output in one pass over the keys, and the backward pass recomputes the probabilities row by
//! row (the FlashAttention recipe, without tiling). On the small attention of the tiny and world
//! models this is 10-30x faster than the unfused path (batched matmuls with a tiny inner
//! dimension plus a softmax built from primitives), forward and backward.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The op: inputs `(B, N, H*d)`, `(B, M, H*d)`, `(B, M, H*d)`, all contiguous f32.
struct FusedAttention {
    heads: usize,
    causal: bool,
}

struct Dims {
    b: usize,
    n: usize,
    m: usize,
    c: usize,
    d: usize,
}

impl FusedAttention {
    fn dims(&self, q: &Layout, k: &Layout) -> Result<Dims> {
        let (b, n, c) = q.shape().dims3()?;
        let (_, m, _) = k.shape().dims3()?;
        if c % self.heads != 0 {
            candle_core::bail!(
                "fused attention: {c} channels do not split into {} heads",
                self.heads
            );
        }
        Ok(Dims {
            b,
            n,
            m,
            c,
            d: c / self.heads,
        })
    }
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("fused attention: inputs must be contiguous f32"),
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scores of query row `qi` against keys `0..len`, turned into probabilities in place.
fn probs_row(qi: &[f32], k: &[f32], h: usize, dm: &Dims, len: usize, scale: f32, p: &mut [f32]) {
    let (c, d) = (dm.c, dm.d);
    let mut max = f32::NEG_INFINITY;
    for (j, pj) in p.iter_mut().enumerate().take(len) {
        let s = dot(qi, &k[j * c + h * d..j * c + h * d + d]) * scale;
        *pj = s;
        max = max.max(s);
    }
    let mut sum = 0f32;
    for pj in p.iter_mut().take(len) {
        *pj = (*pj - max).exp();
        sum += *pj;
    }
    let inv = 1.0 / sum;
    for pj in p.iter_mut().take(len) {
        *pj *= inv;
    }
}

impl CustomOp3 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dm = self.dims(ql, kl)?;
        let (q, k, v) = (slice(qs, ql)?, slice(ks, kl)?, slice(vs, vl)?);
        let scale = 1.0 / (dm.d as f32).sqrt();
        let mut out = vec![0f32; dm.b * dm.n * dm.c];
        out.par_chunks_mut(dm.n * dm.c)
            .enumerate()
            .for_each(|(bi, ob)| {
                let qb = &q[bi * dm.n * dm.c..(bi + 1) * dm.n * dm.c];
                let kb = &k[bi * dm.m * dm.c..(bi + 1) * dm.m * dm.c];
                let vb = &v[bi * dm.m * dm.c..(bi + 1) * dm.m * dm.c];
                let mut p = vec![0f32; dm.m];
                for h in 0..self.heads {
                    for i in 0..dm.n {
                        let len = if self.causal { (i + 1).min(dm.m) } else { dm.m };
                        let qi = &qb[i * dm.c + h * dm.d..i * dm.c + h * dm.d + dm.d];
                        probs_row(qi, kb, h, &dm, len, scale, &mut p);
                        let oi = &mut ob[i * dm.c + h * dm.d..i * dm.c + h * dm.d + dm.d];
                        for (j, &pj) in p.iter().enumerate().take(len) {
                            let vj = &vb[j * dm.c + h * dm.d..j * dm.c + h * dm.d + dm.d];
                            for (o, x) in oi.iter_mut().zip(vj) {
                                *o += pj * x;
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), ql.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        grad_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, n, c) = q.dims3()?;
        let m = k.dim(1)?;
        let dm = Dims {
            b,
            n,
            m,
            c,
            d: c / self.heads,
        };
        let host =
            |t: &Tensor| -> Result<Vec<f32>> { t.contiguous()?.flatten_all()?.to_vec1::<f32>() };
        let (q, k, v, o, go) = (host(q)?, host(k)?, host(v)?, host(out)?, host(grad_out)?);
        let scale = 1.0 / (dm.d as f32).sqrt();
        let per_batch: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..b)
            .into_par_iter()
            .map(|bi| {
                let at = |x: &[f32], len: usize| x[bi * len * c..(bi + 1) * len * c].to_vec();
                let (qb, kb, vb, ob, gb) = (at(&q, n), at(&k, m), at(&v, m), at(&o, n), at(&go, n));
                let (mut dq, mut dk, mut dv) =
                    (vec![0f32; n * c], vec![0f32; m * c], vec![0f32; m * c]);
                let (mut p, mut dp) = (vec![0f32; m], vec![0f32; m]);
                let d = dm.d;
                for h in 0..self.heads {
                    for i in 0..n {
                        let len = if self.causal { (i + 1).min(m) } else { m };
                        let r = i * c + h * d..i * c + h * d + d;
                        let (qi, gi, oi) = (&qb[r.clone()], &gb[r.clone()], &ob[r.clone()]);
                        probs_row(qi, &kb, h, &dm, len, scale, &mut p);
                        let delta = dot(gi, oi);
                        for j in 0..len {
                            let rj = j * c + h * d..j * c + h * d + d;
                            dp[j] = p[j] * (dot(gi, &vb[rj.clone()]) - delta) * scale;
                            for (x, g) in dv[rj.clone()].iter_mut().zip(gi) {
                                *x += p[j] * g;
                            }
                            for (x, qv) in dk[rj].iter_mut().zip(qi) {
                                *x += dp[j] * qv;
                            }
                        }
                        let dqi = &mut dq[r];
                        for (j, &dpj) in dp.iter().enumerate().take(len) {
                            let kj = &kb[j * c + h * d..j * c + h * d + d];
                            for (x, kv) in dqi.iter_mut().zip(kj) {
                                *x += dpj * kv;
                            }
                        }
                    }
                }
                (dq, dk, dv)
            })
            .collect();
        let dev = out.device();
        let (mut dq, mut dk, mut dv) = (Vec::new(), Vec::new(), Vec::new());
        for (q, k, v) in per_batch {
            dq.extend(q);
            dk.extend(k);
            dv.extend(v);
        }
        Ok((
            Some(Tensor::from_vec(dq, (b, n, c), dev)?),
            Some(Tensor::from_vec(dk, (b, m, c), dev)?),
            Some(Tensor::from_vec(dv, (b, m, c), dev)?),
        ))
    }
}

/// Whether the fused op applies: f32 tensors on the CPU.
pub fn applies(q: &Tensor) -> bool {
    q.device().is_cpu() && q.dtype() == candle_core::DType::F32
}

/// Multi-head attention of `(B, N, H*d)` queries over `(B, M, H*d)` keys and values.
pub fn fused_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
) -> Result<Tensor> {
    q.contiguous()?.apply_op3(
        &k.contiguous()?,
        &v.contiguous()?,
        FusedAttention { heads, causal },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Forward and every gradient against the unfused reference path, causal or not.
    #[test]
    fn matches_the_unfused_path() {
        let dev = Device::Cpu;
        for (n, m, heads, causal) in [(7, 7, 2, true), (9, 5, 3, false), (16, 16, 1, false)] {
            let c = heads * 4;
            let q = Var::randn(0f32, 1., (2, n, c), &dev).unwrap();
            let k = Var::randn(0f32, 1., (2, m, c), &dev).unwrap();
            let v = Var::randn(0f32, 1., (2, m, c), &dev).unwrap();
            let w = Tensor::randn(0f32, 1., (2, n, c), &dev).unwrap();
            let run = |fused: bool| {
                let y = if fused {
                    fused_attention(&q, &k, &v, heads, causal).unwrap()
                } else {
                    super::super::nn::unfused_attention(&q, &k, &v, heads, causal).unwrap()
                };
                let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
                let grads: Vec<Tensor> = [&q, &k, &v]
                    .iter()
                    .map(|t| g.get(t.as_tensor()).unwrap().clone())
                    .collect();
                (y, grads)
            };
            let (y1, g1) = run(true);
            let (y0, g0) = run(false);
            let diff = |a: &Tensor, b: &Tensor| {
                (a - b)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            };
            assert!(diff(&y1, &y0) < 1e-5, "forward {n}x{m} causal {causal}");
            for (i, (a, b)) in g1.iter().zip(&g0).enumerate() {
                assert!(
                    diff(a, b) < 1e-4,
                    "grad {i} {n}x{m} causal {causal}: {}",
                    diff(a, b)
                );
            }
        }
    }
}
