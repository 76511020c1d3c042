//! The UNet is trainable: every parameter receives a gradient from a denoising loss, and the
//! gradients equal PyTorch's on the same weights (`unet_grad.safetensors`; `unet_scale_shift` for a
//! UNet that takes the time embedding as a scale and shift). It runs in f32 on
//! `RLHF_T2I_TEST_DEVICE` (the CPU by default).

use super::common::*;
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use rlhf_t2i::pipeline::load_unet;
use rlhf_t2i::weights::{Mode, ModelSource, ParamStore};
use std::collections::HashMap;

/// The trainable f32 UNet of `fixtures/FOLDER`, its parameters, and its output on the reference's
/// `sample`, `timestep` and `encoder_hidden_states`.
fn trainable_unet_output(folder: &str, r: &HashMap<String, Tensor>) -> (ParamStore, Tensor) {
    let (unet, params) = load_unet(
        &ModelSource::Local(fixtures().join(folder)),
        Mode::Trainable,
        DType::F32,
        &dev(),
    )
    .unwrap();
    let out = unet
        .forward(
            &on(&r["sample"]),
            &on(&r["timestep"]),
            &on(&r["encoder_hidden_states"]),
        )
        .unwrap();
    (params, out)
}

fn on(t: &Tensor) -> Tensor {
    t.to_dtype(DType::F32).unwrap().to_device(&dev()).unwrap()
}

#[test]
fn every_unet_parameter_gets_the_reference_gradient() {
    let r = reference("unet");
    let g = reference("unet_grad");
    let (params, out) = trainable_unet_output("tiny-sd", &r);
    let loss = (out - on(&g["target"]))
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    assert_close("loss", &loss.reshape(1).unwrap(), &g["loss"], 1e-4);
    let grads = loss.backward().unwrap();

    assert_gradients(&params, &grads, &g);
}

/// Every parameter's gradient norm equals the reference's `gradnorm.NAME` (and the whole gradient
/// its `grad.NAME`, where stored), relative to the largest norm for parameters whose true gradient
/// is zero.
fn assert_gradients(params: &ParamStore, grads: &GradStore, g: &HashMap<String, Tensor>) {
    let vars = params.named_vars();
    let expected_norms: Vec<&String> = g.keys().filter(|k| k.starts_with("gradnorm.")).collect();
    assert_eq!(
        vars.len(),
        expected_norms.len(),
        "parameter count differs from diffusers'"
    );
    // Parameters whose true gradient is zero (a per-channel bias in front of a one-channel-per-group
    // GroupNorm) carry only rounding noise in both implementations: compare on the global scale.
    let scale = expected_norms
        .iter()
        .map(|k| g[*k].to_vec1::<f32>().unwrap()[0] as f64)
        .fold(0.0, f64::max);
    let mut worst: f64 = 0.0;
    for (name, var) in &vars {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let norm = grad
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        assert!(norm > 0.0, "{name}: zero gradient");
        let expected = g
            .get(&format!("gradnorm.{name}"))
            .unwrap_or_else(|| panic!("{name} not in diffusers' UNet"));
        let expected = expected.to_vec1::<f32>().unwrap()[0] as f64;
        let e = (norm - expected).abs() / expected.max(scale * 1e-3);
        worst = worst.max(e);
        if let Some(full) = g.get(&format!("grad.{name}")) {
            assert_close(&format!("grad {name}"), grad, full, 1e-3);
        }
    }
    println!(
        "gradient norms: {} parameters, worst relative error {worst:.3e}",
        vars.len()
    );
    assert!(worst < 1e-3, "gradient norm relative error {worst:.3e}");
}

/// The same for a UNet whose resnets take the time embedding as a scale and shift after their
/// second GroupNorm (`resnet_time_scale_shift = "scale_shift"`, configs/world/unet.json),
/// against `scripts/make_scale_shift_fixture.py`: loss = mean(out^2).
#[test]
fn a_scale_shift_unet_gets_the_reference_gradient() {
    let r = reference("unet_scale_shift");
    let (params, out) = trainable_unet_output("tiny-world-unet", &r);
    let loss = out.sqr().unwrap().mean_all().unwrap();
    assert_close("loss", &loss.reshape(1).unwrap(), &r["loss"], 1e-4);
    assert_gradients(&params, &loss.backward().unwrap(), &r);
}
