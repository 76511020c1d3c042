//! `rlhf-t2i demo` runs the whole loop (smaller: 2 images per prompt, 3 steps) and leaves every
//! stage's output where it says.

#[test]
fn the_demo_runs_the_whole_loop() {
    let dir = tempfile::tempdir().unwrap();
    rlhf_t2i::stages::demo::run(dir.path(), &candle_core::Device::Cpu, 2, 3).unwrap();
    for f in [
        "generated/manifest.jsonl",
        "feedback/labels.jsonl",
        "embeddings.safetensors",
        "reward/reward.safetensors",
        "reward/curves.svg",
        "scores.jsonl",
        "generated/selected.jsonl",
        "finetuned/model/unet/diffusion_pytorch_model.safetensors",
        "finetuned/curves.svg",
        "eval/report.html",
        "eval/eval.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
}
