//! `rlhf-t2i bench` on the CPU (tiny models): every workload of the PyTorch reference benchmark
//! runs and is reported under bench.py's naming scheme.

use candle_core::Device;
use rlhf_t2i::bench::{run, table, BenchOptions};

#[test]
fn every_workload_runs_on_the_cpu() {
    let o = BenchOptions {
        full_size: false,
        warmup: 0,
        repeats: 1,
        filter: None,
        budget_s: None,
    };
    let recs = run(&Device::Cpu, &o, |_| {}).unwrap();
    let names: Vec<&str> = recs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "unet_fwd_f32_b2",
            "unet_fwd_f32_b8",
            "train_pure_f32_b8",
            "vae_encode_f32_b8_32px",
            "vae_decode_f32_b4_32px",
            "clip_vision_f32_b64",
            "clip_text_f32_b256",
            "sample_ddim50_cfg_f32_p4",
            "train_pure_f32_b32",
        ]
    );
    for r in &recs {
        assert!(r["median_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(
            r.as_object().unwrap().keys().any(|k| k.ends_with("_per_s")),
            "{r}"
        );
    }
    let t = table(&recs, &Device::Cpu);
    assert!(
        t.contains("train_pure_f32_b32") && t.contains("cpu, tiny models"),
        "{t}"
    );
    let only = BenchOptions {
        filter: Some("clip_text".into()),
        ..o
    };
    assert_eq!(run(&Device::Cpu, &only, |_| {}).unwrap().len(), 1);
    // Past the budget, measurements are reported as skipped, not run.
    let none = BenchOptions {
        budget_s: Some(-1.0),
        ..o
    };
    let skipped = run(&Device::Cpu, &none, |_| {}).unwrap();
    assert_eq!(skipped.len(), 9);
    assert!(
        skipped.iter().all(|r| r["skipped"].is_string()),
        "{skipped:?}"
    );
}
