//! AdamW with state that can be saved and restored (candle-nn's cannot), plus gradient-norm
//! clipping. Update rule as `torch.optim.AdamW`: decoupled weight decay, bias-corrected moments.

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// First and second moments of one parameter: plain vectors updated in one fused, parallel loop
/// for f32 parameters on the CPU (a chain of tensor ops costs several times more there), tensors
/// on other devices.
enum Moments {
    Host(Vec<f32>, Vec<f32>),
    Device(Tensor, Tensor),
}

pub struct AdamW {
    pub config: AdamWConfig,
    params: Vec<(String, Var)>,
    moments: Vec<Moments>,
    pub step: u64,
}

const CHUNK: usize = 1 << 14;

impl AdamW {
    /// Moments are kept in f32 whatever the parameters' dtype.
    pub fn new(params: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        let moments = params
            .iter()
            .map(|(_, p)| {
                Ok(if Self::host(p) {
                    Moments::Host(vec![0.0; p.elem_count()], vec![0.0; p.elem_count()])
                } else {
                    let z = p.as_tensor().zeros_like()?.to_dtype(DType::F32)?;
                    Moments::Device(z.clone(), z)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            params,
            moments,
            step: 0,
        })
    }

    fn host(p: &Var) -> bool {
        p.device().is_cpu() && p.dtype() == DType::F32
    }

    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Global L2 norm of the gradients of this optimiser's parameters.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut sq = 0f64;
        for (_, p) in &self.params {
            if let Some(g) = grads.get(p.as_tensor()) {
                sq += g
                    .to_dtype(DType::F32)?
                    .sqr()?
                    .sum_all()?
                    .to_scalar::<f32>()? as f64;
            }
        }
        Ok(sq.sqrt())
    }

    /// One update with learning rate `lr`; gradients are scaled by `grad_scale` first (for
    /// clipping or averaging accumulated gradients). Parameters without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        let by_name: HashMap<String, Tensor> = self
            .params
            .iter()
            .filter_map(|(n, p)| grads.get(p.as_tensor()).map(|g| (n.clone(), g.clone())))
            .collect();
        self.step_named(&by_name, lr, grad_scale)
    }

    /// As [`step`](Self::step), with gradients by parameter name (accumulated over micro-batches,
    /// or computed on a half-precision copy of the parameters).
    pub fn step_named(
        &mut self,
        grads: &HashMap<String, Tensor>,
        lr: f64,
        grad_scale: f64,
    ) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let (bc1, bc2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        for (i, (name, p)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(name) else {
                continue;
            };
            match &mut self.moments[i] {
                Moments::Host(m, v) => {
                    let g = g.flatten_all()?.to_vec1::<f32>()?;
                    let mut theta = p.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                    // 1 - beta in f64 first: 1 - 0.999f32 is off by 5e-5 relative.
                    let (one_b1, b2, one_b2) = (
                        (1.0 - c.beta1) as f32,
                        c.beta2 as f32,
                        (1.0 - c.beta2) as f32,
                    );
                    let (scale, eps) = (grad_scale as f32, c.eps as f32);
                    let decay = (1.0 - lr * c.weight_decay) as f32;
                    let (step_size, bc2_sqrt) = ((lr / bc1) as f32, bc2.sqrt() as f32);
                    theta
                        .par_chunks_mut(CHUNK)
                        .zip(m.par_chunks_mut(CHUNK))
                        .zip(v.par_chunks_mut(CHUNK))
                        .zip(g.par_chunks(CHUNK))
                        .for_each(|(((theta, m), v), g)| {
                            for j in 0..theta.len() {
                                let gj = g[j] * scale;
                                // The same operations, in the same order, as torch's AdamW.
                                m[j] += one_b1 * (gj - m[j]);
                                v[j] = v[j] * b2 + one_b2 * gj * gj;
                                theta[j] = theta[j] * decay
                                    - step_size * (m[j] / (v[j].sqrt() / bc2_sqrt + eps));
                            }
                        });
                    p.set(&Tensor::from_vec(theta, p.shape(), p.device())?)?;
                }
                Moments::Device(m, v) => {
                    // Detached throughout: a Var's gradient from candle's backward can carry the
                    // graph of the forward pass, and a moment built from it would keep every
                    // step's activations alive (on CUDA this filled 139 GiB in 50 steps).
                    let g = (g.detach().to_dtype(DType::F32)? * grad_scale)?;
                    *m = ((&*m * c.beta1)? + (&g * (1.0 - c.beta1))?)?.detach();
                    *v = ((&*v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?.detach();
                    let update = ((&*m / bc1)? / ((&*v / bc2)?.sqrt()? + c.eps)?)?;
                    let theta = p.as_tensor().detach().to_dtype(DType::F32)?;
                    let theta = ((theta * (1.0 - lr * c.weight_decay))? - (update * lr)?)?;
                    p.set(&theta.to_dtype(p.dtype())?)?;
                }
            }
        }
        Ok(())
    }

    /// Moments and step as named tensors (`m.<name>`, `v.<name>`, `step`), for checkpoints.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for ((name, p), mom) in self.params.iter().zip(&self.moments) {
            let (m, v) = match mom {
                Moments::Host(m, v) => (
                    Tensor::from_slice(m, p.shape(), p.device())?,
                    Tensor::from_slice(v, p.shape(), p.device())?,
                ),
                Moments::Device(m, v) => (m.clone(), v.clone()),
            };
            out.insert(format!("m.{name}"), m);
            out.insert(format!("v.{name}"), v);
        }
        out.insert(
            "step".into(),
            Tensor::new(&[self.step as f64], &candle_core::Device::Cpu)?,
        );
        Ok(out)
    }

    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        for ((name, p), mom) in self.params.iter().zip(self.moments.iter_mut()) {
            let get = |k: String| -> Result<Tensor> {
                let t = state
                    .get(&k)
                    .with_context(|| format!("optimiser state has no `{k}`"))?;
                if t.shape() != p.shape() {
                    bail!(
                        "optimiser state `{k}` has shape {:?}, the parameter {:?}",
                        t.dims(),
                        p.dims()
                    );
                }
                Ok(t.to_dtype(DType::F32)?.to_device(p.device())?)
            };
            let (m, v) = (get(format!("m.{name}"))?, get(format!("v.{name}"))?);
            *mom = match mom {
                Moments::Host(..) => {
                    Moments::Host(m.flatten_all()?.to_vec1()?, v.flatten_all()?.to_vec1()?)
                }
                Moments::Device(..) => Moments::Device(m, v),
            };
        }
        let step = state.get("step").context("optimiser state has no `step`")?;
        self.step = step.to_dtype(DType::F64)?.to_vec1::<f64>()?[0] as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn device_moments_hold_no_graph() {
        // f16 weights take the device-side path (as every CUDA weight does). The gradient of
        // `w * x` with respect to `w` is built from `x`, a tracked tensor; a moment made from it
        // without detaching would keep that step's graph, and the previous moment, alive.
        let dev = Device::Cpu;
        let w = Var::new(&[1f32, -2.0], &dev).unwrap();
        let w16 = Var::from_tensor(&w.as_tensor().to_dtype(DType::F16).unwrap()).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), w16.clone())], AdamWConfig::default()).unwrap();
        for _ in 0..3 {
            let x = (w.as_tensor() * 3.0).unwrap().to_dtype(DType::F16).unwrap();
            let loss = (w16.as_tensor() * &x).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&grads, 0.1, 1.0).unwrap();
        }
        for (name, t) in opt.state().unwrap() {
            assert!(!t.track_op(), "{name} carries a graph");
        }
    }

    #[test]
    fn matches_torch_adamw_on_a_quadratic() {
        // torch.optim.AdamW([x], lr=0.1, weight_decay=0.01) on f(x) = sum(x^2), x0 = [1, -2],
        // three steps, gives [0.6989112, -1.6949446] (torch 2.11).
        let x = Var::new(&[1f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(
            vec![("x".into(), x.clone())],
            AdamWConfig {
                lr: 0.1,
                ..Default::default()
            },
        )
        .unwrap();
        for _ in 0..3 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            let g = loss.backward().unwrap();
            opt.step(&g, 0.1, 1.0).unwrap();
        }
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (v[0] - 0.6989112).abs() < 1e-6 && (v[1] + 1.6949446).abs() < 1e-6,
            "{v:?}"
        );
    }

    #[test]
    fn state_round_trips() {
        let x = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], AdamWConfig::default()).unwrap();
        let g = x
            .as_tensor()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        opt.step(&g, 1e-3, 1.0).unwrap();
        let state = opt.state().unwrap();
        let mut other = AdamW::new(vec![("x".into(), x.clone())], AdamWConfig::default()).unwrap();
        other.load_state(&state).unwrap();
        assert_eq!(other.step, 1);
        assert_eq!(
            other.state().unwrap()["m.x"].to_vec1::<f32>().unwrap(),
            state["m.x"].to_vec1::<f32>().unwrap()
        );
    }
}
