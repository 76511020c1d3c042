//! `init-tiny`, `prompts` and `generate` end to end on the tiny model: outputs, metadata,
//! determinism, resume after a kill, and errors for bad input.

use candle_core::{DType, Device};
use rlhf_t2i::diffusion::sampler::{SampleSettings, SchedulerKind};
use rlhf_t2i::io::jsonl::read_jsonl;
use rlhf_t2i::io::manifest::ImageRecord;
use rlhf_t2i::io::png_meta::read_png_text;
use rlhf_t2i::pipeline::StableDiffusion;
use rlhf_t2i::stages::generate::{run, GenerateOptions};
use rlhf_t2i::stages::init_tiny::write_tiny_models;
use rlhf_t2i::stages::prompts::{self as prompt_stage, PromptSet};
use rlhf_t2i::weights::{Mode, ModelSource};
use std::path::Path;

fn tiny(dir: &Path) -> StableDiffusion {
    let paths = write_tiny_models(&dir.join("models"), 0).unwrap();
    StableDiffusion::load(
        &ModelSource::Local(paths.sd),
        Mode::Frozen,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap()
}

fn options(dir: &Path, out: &str, batch_size: usize) -> GenerateOptions {
    GenerateOptions {
        prompts: dir.join("prompts.jsonl"),
        out: dir.join(out),
        images_per_prompt: Some(2),
        seed: 7,
        sampling: SampleSettings {
            scheduler: SchedulerKind::Ddim,
            steps: 3,
            guidance: 7.5,
            eta: 0.0,
        },
        batch_size,
        size: None,
        model_name: "tiny".into(),
    }
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn generate_writes_tagged_pngs_and_resumes_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let sd = tiny(dir.path());
    prompt_stage::run(
        PromptSet::Eval,
        None,
        0,
        Some(3),
        &dir.path().join("prompts.jsonl"),
    )
    .unwrap();

    let first = run(&sd, &options(dir.path(), "a", 4)).unwrap();
    assert_eq!((first.generated, first.already_done), (6, 0));
    let records: Vec<ImageRecord> = read_jsonl(&first.manifest).unwrap();
    assert_eq!(records.len(), 6);
    let img = dir.path().join("a").join(&records[0].path);
    let text = read_png_text(&img).unwrap();
    let get = |k: &str| {
        text.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("prompt"), records[0].prompt.text);
    assert_eq!(get("seed"), records[0].seed.to_string());
    assert_eq!(get("steps"), "3");
    let decoded = image::open(&img).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (32, 32));

    // Nothing left to do.
    let again = run(&sd, &options(dir.path(), "a", 4)).unwrap();
    assert_eq!((again.generated, again.already_done), (0, 6));

    // A kill mid-append: torn last manifest line, and its image never written.
    let manifest = std::fs::read_to_string(&first.manifest).unwrap();
    let cut = manifest.trim_end().rfind('\n').unwrap() + 20;
    std::fs::write(&first.manifest, &manifest[..cut]).unwrap();
    let last = dir.path().join("a").join(&records[5].path);
    let original_last = bytes(&last);
    std::fs::remove_file(&last).unwrap();
    let resumed = run(&sd, &options(dir.path(), "a", 4)).unwrap();
    assert_eq!((resumed.generated, resumed.already_done), (1, 5));
    let after: Vec<ImageRecord> = read_jsonl(&first.manifest).unwrap();
    assert_eq!(
        after, records,
        "resume must give the same records, once each"
    );
    assert_eq!(bytes(&last), original_last, "same seed, same image");
}

#[test]
fn an_image_depends_on_its_seed_not_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let sd = tiny(dir.path());
    prompt_stage::run(
        PromptSet::Eval,
        None,
        0,
        Some(2),
        &dir.path().join("prompts.jsonl"),
    )
    .unwrap();
    let a = run(&sd, &options(dir.path(), "a", 4)).unwrap();
    run(&sd, &options(dir.path(), "b", 1)).unwrap();
    let records: Vec<ImageRecord> = read_jsonl(&a.manifest).unwrap();
    let mut distinct = std::collections::HashSet::new();
    for r in &records {
        let (pa, pb) = (
            dir.path().join("a").join(&r.path),
            dir.path().join("b").join(&r.path),
        );
        let (ia, ib) = (
            image::open(&pa).unwrap().to_rgb8(),
            image::open(&pb).unwrap().to_rgb8(),
        );
        let max_diff = ia
            .as_raw()
            .iter()
            .zip(ib.as_raw())
            .map(|(x, y)| (*x as i32 - *y as i32).abs())
            .max()
            .unwrap();
        // Bitwise: every op of sampling computes a sample's values without the others (the
        // CPU's 2-D linear layers row by row, `models::nn::Linear`).
        assert_eq!(
            max_diff, 0,
            "{}: batch size changed pixels by {max_diff}",
            r.id
        );
        distinct.insert(ia.into_raw());
    }
    assert_eq!(
        distinct.len(),
        records.len(),
        "different seeds must give different images"
    );
}

#[test]
fn bad_input_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let sd = tiny(dir.path());
    let prompts = dir.path().join("prompts.jsonl");
    std::fs::write(&prompts, "{\"id\":\"a\",\"text\":\"One dog.\",\"category\":\"count\",\"object\":\"dog\",\"count\":1,\"split\":\"seen\"}\n{not json}\n").unwrap();
    let msg = format!(
        "{:#}",
        run(&sd, &options(dir.path(), "a", 2)).err().unwrap()
    );
    assert!(msg.contains("prompts.jsonl:2"), "{msg}");

    std::fs::write(&prompts, "{\"id\":\"a\",\"text\":\"One dog.\",\"category\":\"count\",\"object\":\"dog\",\"split\":\"seen\",\"colour\":\"red\"}\n").unwrap();
    let msg = format!(
        "{:#}",
        run(&sd, &options(dir.path(), "a", 2)).err().unwrap()
    );
    assert!(
        msg.contains("prompts.jsonl:1") && msg.contains("colour"),
        "{msg}"
    );

    std::fs::write(&prompts, "{\"id\":\"a\",\"text\":\"One dog.\",\"category\":\"count\",\"object\":\"dog\",\"split\":\"seen\"}\n").unwrap();
    let mut zero = options(dir.path(), "a", 2);
    zero.images_per_prompt = Some(0);
    let msg = format!("{:#}", run(&sd, &zero).err().unwrap());
    assert!(msg.contains("zero images"), "{msg}");

    // Resuming into a folder made with other settings is refused, not mixed.
    run(&sd, &options(dir.path(), "c", 2)).unwrap();
    let mut other = options(dir.path(), "c", 2);
    other.sampling.steps = 4;
    let msg = format!("{:#}", run(&sd, &other).err().unwrap());
    assert!(msg.contains("other settings"), "{msg}");
}
