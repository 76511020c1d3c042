//! The reward model on synthetic CLIP-like embeddings where "good" is a known function of the
//! inputs: it must learn it, and the prompt-classification loss must help on unseen prompts.

use candle_core::{Device, Tensor};
use rlhf_t2i::prompts::{Category, Split};
use rlhf_t2i::reward::train::{evaluate, train, Example, RewardData, RewardTrainOptions};
use rlhf_t2i::runtime::{randn, rng};

const DIM: usize = 32;
const COUNTS: u32 = 6;

/// Texts are object + count directions; an image of (object, true count) lives in another
/// space (a fixed random linear map) with noise. Good iff the true count is the prompt's.
/// `spurious` adds an image-only cue that agrees with the label on seen objects (as a labeler's
/// taste for clean images might) and is random on unseen ones: a model may fit the seen data
/// through it without learning to match image and text.
struct World {
    images: Vec<Vec<f32>>,
    examples: Vec<Example>,
    texts: Tensor,
}

fn world(
    objects: usize,
    heldout_from: usize,
    images_per_prompt: usize,
    spurious: f64,
    seed: u64,
) -> World {
    let dev = Device::Cpu;
    let mut r = rng(seed);
    let obj = randn(&mut r, &[objects, DIM], candle_core::DType::F32, &dev).unwrap();
    let cnt = (randn(
        &mut r,
        &[COUNTS as usize, DIM],
        candle_core::DType::F32,
        &dev,
    )
    .unwrap()
        * 1.5)
        .unwrap();
    let map = (randn(&mut r, &[DIM, DIM], candle_core::DType::F32, &dev).unwrap()
        / (DIM as f64).sqrt())
    .unwrap();
    let cue = randn(&mut r, &[DIM], candle_core::DType::F32, &dev).unwrap();
    let text_of = |o: usize, c: u32| -> Tensor {
        (obj.get(o).unwrap() + cnt.get(c as usize).unwrap()).unwrap()
    };
    let text_row = |o: usize, c: u32| (o * COUNTS as usize + c as usize) as u32;
    let texts = Tensor::stack(
        &(0..objects)
            .flat_map(|o| (0..COUNTS).map(move |c| (o, c)))
            .map(|(o, c)| text_of(o, c))
            .collect::<Vec<_>>(),
        0,
    )
    .unwrap();
    let mut images = Vec::new();
    let mut examples = Vec::new();
    let mut noise = rng(seed + 100);
    for o in 0..objects {
        for c in 0..COUNTS {
            for k in 0..images_per_prompt {
                let good = k % 2 == 0;
                let true_c = if good {
                    c
                } else {
                    (c + 1 + (k as u32 / 2) % (COUNTS - 1)) % COUNTS
                };
                let clean = text_of(o, true_c)
                    .unsqueeze(0)
                    .unwrap()
                    .matmul(&map)
                    .unwrap()
                    .squeeze(0)
                    .unwrap();
                let sign = if o >= heldout_from {
                    if (k / 2) % 2 == 0 {
                        1.0
                    } else {
                        -1.0
                    }
                } else if good {
                    1.0
                } else {
                    -1.0
                };
                let img = (clean
                    + (randn(&mut noise, &[DIM], candle_core::DType::F32, &dev).unwrap() * 0.3)
                        .unwrap())
                .unwrap();
                let img = (img + (&cue * (spurious * sign)).unwrap()).unwrap();
                images.push(img.to_vec1::<f32>().unwrap());
                examples.push(Example {
                    image: (images.len() - 1) as u32,
                    text: text_row(o, c),
                    target: if good { 1.0 } else { 0.0 },
                    negatives: (0..COUNTS)
                        .filter(|&x| x != c)
                        .map(|x| text_row(o, x))
                        .collect(),
                    prompt_id: format!("o{o}-c{c}"),
                    split: if o >= heldout_from {
                        Split::Unseen
                    } else {
                        Split::Seen
                    },
                    category: Category::Count,
                });
            }
        }
    }
    World {
        images,
        examples,
        texts,
    }
}

fn data(w: &World, keep: impl Fn(&Example) -> bool) -> RewardData {
    let rows: Vec<Tensor> = w
        .images
        .iter()
        .map(|v| Tensor::new(v.as_slice(), &Device::Cpu).unwrap())
        .collect();
    RewardData {
        images: Tensor::stack(&rows, 0).unwrap(),
        texts: w.texts.clone(),
        examples: w.examples.iter().filter(|e| keep(e)).cloned().collect(),
    }
}

fn small(lambda: f64, seed: u64) -> RewardTrainOptions {
    RewardTrainOptions {
        hidden: vec![64, 64],
        lambda,
        batch_size: 64,
        epochs: 60,
        patience: 60,
        seed,
        optim: rlhf_t2i::train::optim::AdamWConfig {
            lr: 3e-3,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn learns_a_known_labeling_function_above_95_percent() {
    let w = world(10, 10, 40, 0.0, 1);
    let d = data(&w, |_| true);
    let (_, _, report) = train(
        &d,
        &RewardTrainOptions {
            epochs: 30,
            patience: 30,
            ..small(0.0, 1)
        },
        |_| {},
    )
    .unwrap();
    println!(
        "synthetic reward: val accuracy {:.3} on {} held-out-prompt images",
        report.val.accuracy, report.val_examples
    );
    assert!(
        report.val.accuracy > 0.95,
        "val accuracy {:.3}",
        report.val.accuracy
    );
    let first = &report.epochs[0];
    let best = &report.epochs[report.best_epoch - 1];
    assert!(best.train_mse < first.train_mse, "training loss must fall");
}

#[test]
fn prompt_classification_loss_helps_on_unseen_objects() {
    // Few images per prompt; 8 objects to train on, 4 unseen objects to test on.
    let (mut with, mut without) = (0.0, 0.0);
    for seed in 0..3 {
        let w = world(12, 8, 4, 1.0, 10 + seed);
        let train_data = data(&w, |e| e.split == Split::Seen);
        let test = data(&w, |e| e.split == Split::Unseen);
        let idx: Vec<usize> = (0..test.examples.len()).collect();
        for (lambda, acc) in [(1.0, &mut with), (0.0, &mut without)] {
            let opts = RewardTrainOptions {
                val_fraction: 0.0,
                ..small(lambda, seed)
            };
            let (model, _, _) = train(&train_data, &opts, |_| {}).unwrap();
            let e = evaluate(&model, &test, &idx, &opts).unwrap();
            *acc += e.accuracy / 3.0;
        }
    }
    println!("unseen-object accuracy: with L_pc {with:.3}, without {without:.3}");
    assert!(
        with > without + 0.03,
        "with L_pc {with:.3}, without {without:.3}"
    );
}
