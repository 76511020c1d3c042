//! CLIP preprocessing against transformers' `CLIPImageProcessor` (PIL backend) on real PNGs, and
//! the tiny CLIP's embeddings of them (fixtures: `scripts/make_preprocess_fixtures.py`).

use super::common::*;
use candle_core::{DType, Device, Tensor};
use rlhf_t2i::embed::preprocess::{load_for_clip, normalize, preprocess, resize_and_crop};
use rlhf_t2i::pipeline::load_clip;
use rlhf_t2i::weights::ModelSource;

const STEMS: [&str; 6] = [
    "img_224x224",
    "img_300x200",
    "img_200x300",
    "img_64x48",
    "img_517x333",
    "img_rgba_100x100",
];

#[test]
fn pixels_match_transformers_exactly() {
    let dir = fixtures().join("preprocess");
    let r = candle_core::safetensors::load(dir.join("clip224.safetensors"), &Device::Cpu).unwrap();
    for stem in STEMS {
        let img = load_for_clip(&dir.join(format!("{stem}.png"))).unwrap();
        let ours = resize_and_crop(&img, 224);
        let expected = r[&format!("{stem}.pil_u8")]
            .permute((1, 2, 0))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<u8>()
            .unwrap();
        let differing = ours
            .as_raw()
            .iter()
            .zip(&expected)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing,
            0,
            "{stem}: {differing} of {} 8-bit values differ from Pillow",
            expected.len()
        );
        let small = preprocess(&img, 32, &Device::Cpu).unwrap();
        assert_close(
            &format!("{stem} at 32 px"),
            &small,
            &r[&format!("{stem}.pil32")],
            1e-6,
        );
    }
    // The normalisation on its own, for the 224 px path.
    let u8s = &r["img_224x224.pil_u8"];
    let img = image::RgbImage::from_raw(
        224,
        224,
        u8s.permute((1, 2, 0))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<u8>()
            .unwrap(),
    )
    .unwrap();
    let x = normalize(&img, &Device::Cpu).unwrap();
    let mean = Tensor::new(&[0.48145466f32, 0.4578275, 0.40821073], &Device::Cpu)
        .unwrap()
        .reshape((3, 1, 1))
        .unwrap();
    let std = Tensor::new(&[0.26862954f32, 0.261_302_6, 0.275_777_1], &Device::Cpu)
        .unwrap()
        .reshape((3, 1, 1))
        .unwrap();
    let expected = (u8s.to_dtype(DType::F32).unwrap() / 255.0)
        .unwrap()
        .broadcast_sub(&mean)
        .unwrap()
        .broadcast_div(&std)
        .unwrap();
    assert_close("normalisation", &x, &expected, 1e-6);
}

#[test]
fn tiny_clip_embeds_the_pngs_like_transformers() {
    let dir = fixtures().join("preprocess");
    let r = candle_core::safetensors::load(dir.join("clip224.safetensors"), &Device::Cpu).unwrap();
    let (clip, _) = load_clip(
        &ModelSource::Local(fixtures().join("tiny-clip")),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let batch: Vec<Tensor> = STEMS
        .iter()
        .map(|s| {
            preprocess(
                &load_for_clip(&dir.join(format!("{s}.png"))).unwrap(),
                32,
                &Device::Cpu,
            )
            .unwrap()
        })
        .collect();
    let emb = clip
        .image_features(&Tensor::stack(&batch, 0).unwrap())
        .unwrap();
    let expected = Tensor::stack(
        &STEMS
            .iter()
            .map(|s| r[&format!("{s}.embeds32")].clone())
            .collect::<Vec<_>>(),
        0,
    )
    .unwrap();
    assert_close("tiny clip image embeddings of PNGs", &emb, &expected, 1e-4);
    let text = clip.text_features(&ids_u32(&r["text.ids"])).unwrap();
    assert_close("tiny clip text embeddings", &text, &r["text.embeds"], 1e-4);
}
