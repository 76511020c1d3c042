//! Loading real-layout folders: clear errors for missing or mis-shaped tensors, any weight dtype
//! into any compute dtype, and the tokenizer against open_clip's ids.

use super::common::*;
use candle_core::{DType, Device, Tensor};
use rlhf_t2i::pipeline::{load_tokenizer, load_unet};
use rlhf_t2i::weights::{Mode, ModelSource};
use std::collections::HashMap;
use std::path::Path;

/// Copy the tiny SD's unet folder into `dir`, passing its tensors through `edit`.
fn edited_unet(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> ModelSource {
    let src = fixtures().join("tiny-sd/unet");
    std::fs::create_dir_all(dir.join("unet")).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("unet/config.json")).unwrap();
    let mut t = candle_core::safetensors::load(
        src.join("diffusion_pytorch_model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    edit(&mut t);
    candle_core::safetensors::save(&t, dir.join("unet/diffusion_pytorch_model.safetensors"))
        .unwrap();
    ModelSource::Local(dir.to_path_buf())
}

fn load_err(source: &ModelSource) -> String {
    match load_unet(source, Mode::Frozen, DType::F32, &Device::Cpu) {
        Ok(_) => panic!("loading should fail"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn missing_tensor_is_named_with_file_and_folder() {
    let dir = tempfile::tempdir().unwrap();
    let name = "mid_block.attentions.0.proj_in.weight";
    let src = edited_unet(dir.path(), |t| {
        t.remove(name);
    });
    let msg = load_err(&src);
    assert!(msg.contains(name), "{msg}");
    assert!(msg.contains("diffusion_pytorch_model.safetensors"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains("missing"), "{msg}");
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let name = "conv_in.weight";
    let src = edited_unet(dir.path(), |t| {
        t.insert(
            name.into(),
            Tensor::zeros((32, 3, 3, 3), DType::F16, &Device::Cpu).unwrap(),
        );
    });
    let msg = load_err(&src);
    assert!(
        msg.contains(name) && msg.contains("[32, 3, 3, 3]") && msg.contains("[32, 4, 3, 3]"),
        "{msg}"
    );
    assert!(msg.contains("config.json"), "{msg}");
}

#[test]
fn missing_file_says_what_a_folder_needs() {
    let dir = tempfile::tempdir().unwrap();
    let msg = load_err(&ModelSource::Local(dir.path().to_path_buf()));
    assert!(
        msg.contains("unet/config.json") && msg.contains("diffusers-layout"),
        "{msg}"
    );
}

#[test]
fn offline_hub_repo_error_names_repo_file_and_fix() {
    std::env::set_var("HF_HUB_OFFLINE", "1");
    std::env::set_var("HF_HOME", tempfile::tempdir().unwrap().path());
    let src = ModelSource::parse("nobody/not-a-model").unwrap();
    let msg = load_err(&src);
    assert!(
        msg.contains("nobody/not-a-model")
            && msg.contains("unet/config.json")
            && msg.contains("--model /path/to"),
        "{msg}"
    );
}

#[test]
fn weights_of_every_dtype_load_into_every_cpu_compute_dtype() {
    let r = reference("unet");
    let t = r["timestep"].to_dtype(DType::F32).unwrap();
    for file_dtype in [DType::F32, DType::F16, DType::BF16] {
        let dir = tempfile::tempdir().unwrap();
        let src = edited_unet(dir.path(), |w| {
            for v in w.values_mut() {
                *v = v.to_dtype(file_dtype).unwrap();
            }
        });
        // bf16 weights lose precision against the fp16 originals; f16 compute adds its own.
        for (dtype, tol) in [
            (
                DType::F32,
                if file_dtype == DType::BF16 {
                    3e-2
                } else {
                    1e-4
                },
            ),
            (DType::F16, 3e-2),
        ] {
            let (unet, _) = load_unet(&src, Mode::Frozen, dtype, &Device::Cpu).unwrap();
            let x = r["sample"].to_dtype(dtype).unwrap();
            let ctx = r["encoder_hidden_states"].to_dtype(dtype).unwrap();
            let out = unet.forward(&x, &t, &ctx).unwrap();
            assert_eq!(out.dtype(), dtype);
            assert_close(
                &format!("unet, {file_dtype:?} weights, {dtype:?} compute"),
                &out.to_dtype(DType::F32).unwrap(),
                &r["out"],
                tol,
            );
        }
    }
}

#[test]
fn bf16_compute_on_cpu_is_refused_clearly() {
    let msg = match rlhf_t2i::runtime::check_dtype_on_device(DType::BF16, &Device::Cpu) {
        Ok(()) => panic!("bf16 on the CPU should be refused"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        msg.contains("bf16") && msg.contains("f16") && msg.contains("CPU"),
        "{msg}"
    );
}

#[test]
fn tokenizer_matches_open_clip_on_300_prompts() {
    #[derive(serde::Deserialize)]
    struct Case {
        text: String,
        ids: Vec<u32>,
    }
    let tok = load_tokenizer(&ModelSource::Local(fixtures().join("tiny-sd")), "tokenizer").unwrap();
    let text = std::fs::read_to_string(fixtures().join("tokenizer_cases.jsonl")).unwrap();
    let cases: Vec<Case> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() >= 300);
    for c in &cases {
        assert_eq!(tok.encode_raw(&c.text).unwrap(), c.ids, "{:?}", c.text);
    }
}

#[test]
fn vocab_and_merges_folder_tokenises_like_tokenizer_json() {
    // SD1.5's hub folder ships vocab.json + merges.txt only.
    let dir = tempfile::tempdir().unwrap();
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("tiny-sd/tokenizer/tokenizer.json")).unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("tokenizer")).unwrap();
    std::fs::write(
        dir.path().join("tokenizer/vocab.json"),
        json["model"]["vocab"].to_string(),
    )
    .unwrap();
    let merges: Vec<String> = json["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => {
                format!("{} {}", a[0].as_str().unwrap(), a[1].as_str().unwrap())
            }
            _ => panic!("unexpected merge entry"),
        })
        .collect();
    std::fs::write(
        dir.path().join("tokenizer/merges.txt"),
        format!("#version: 0.2\n{}\n", merges.join("\n")),
    )
    .unwrap();
    let a = load_tokenizer(&ModelSource::Local(dir.path().to_path_buf()), "tokenizer").unwrap();
    let b = load_tokenizer(&ModelSource::Local(fixtures().join("tiny-sd")), "tokenizer").unwrap();
    for t in [
        "Two blue dogs in the forest.",
        "A red colored dog.",
        "An apple on the moon.",
    ] {
        assert_eq!(a.encode_padded(t).unwrap(), b.encode_padded(t).unwrap());
    }
}

#[test]
fn text_encoder_saved_without_the_text_model_prefix_loads_too() {
    let r = reference("clip_text");
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("tiny-sd/text_encoder");
    std::fs::create_dir_all(dir.path().join("text_encoder")).unwrap();
    std::fs::copy(
        src.join("config.json"),
        dir.path().join("text_encoder/config.json"),
    )
    .unwrap();
    let t = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let stripped: HashMap<String, Tensor> = t
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches("text_model.").to_string(), v))
        .collect();
    candle_core::safetensors::save(&stripped, dir.path().join("text_encoder/model.safetensors"))
        .unwrap();
    let source = ModelSource::Local(dir.path().to_path_buf());
    let (te, _) =
        rlhf_t2i::pipeline::load_text_encoder(&source, Mode::Frozen, DType::F32, &Device::Cpu)
            .unwrap();
    let out = te.forward(&ids_u32(&r["input_ids"])).unwrap();
    assert_close(
        "unprefixed text encoder",
        &out.last_hidden_state,
        &r["last_hidden_state"],
        1e-4,
    );
}
