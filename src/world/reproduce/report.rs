//! The reproduction's report: `report.md` (every number with its interval and, for each claim,
//! whether it reproduced), `results.json`, and SVG charts; the images are in `eval/report.html`.

use super::{ModelRow, Results};
use crate::io::atomic::write_atomic;
use crate::report::plot::bar_chart;
use crate::stats::Proportion;
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

fn pct(p: &Proportion) -> String {
    if p.value.is_nan() {
        return "n/a".into();
    }
    format!(
        "{:.1}% [{:.1}, {:.1}]",
        100.0 * p.value,
        100.0 * p.lo,
        100.0 * p.hi
    )
}

/// Whether `better` is above `worse` beyond both 95% intervals: the rule for claims 1 and 3.
fn clears(better: &Proportion, worse: &Proportion) -> bool {
    better.lo > worse.hi
}

/// Claim 1: is the main fine-tuned model's alignment above the original's, beyond both intervals?
pub fn claim1_holds(r: &Results) -> bool {
    claim1_figures(r).is_some_and(|(tuned, orig)| clears(tuned, orig))
}

/// Claim 2: does the learned reward (with L_pc) beat the CLIP score on all held-out pairs?
pub fn claim2_holds(r: &Results) -> bool {
    claim2_figures(r).is_some_and(|(reward, clip)| reward.value > clip.value)
}

/// Claim 3: are the best `keep` of `n` by reward more often aligned than `keep` at random,
/// beyond both intervals (as claim 1)?
pub fn claim3_holds(r: &Results) -> bool {
    matches!(&r.rejection, Some((top, random)) if clears(top, random))
}

/// "1322 s", or for a run resumed in more than one pass "1337 s in all (its last pass 15 s)".
fn run_time(r: &Results) -> String {
    if r.seconds - r.seconds_this_pass >= 1.0 {
        format!(
            "{:.0} s in all (its last pass {:.0} s)",
            r.seconds, r.seconds_this_pass
        )
    } else {
        format!("{:.0} s", r.seconds)
    }
}

/// A claim's verdict by its rule (`ok`), and how its two figures stand: beyond both 95%
/// intervals or inside them, the paper's way or the other. Claim 2's rule is the direction, so
/// a reader must see when that direction is inside the intervals; claims 1 and 3 need the
/// intervals cleared, so a reader must see when the direction holds all the same.
fn verdict(ok: bool, figures: Option<(&Proportion, &Proportion)>) -> String {
    let base = if ok {
        "**reproduced**"
    } else {
        "**not reproduced** here"
    };
    let how = match figures {
        None => return base.to_string(),
        Some((better, worse)) if clears(better, worse) => {
            "the paper's direction, beyond both 95% intervals"
        }
        Some((better, worse)) if better.value > worse.value => {
            "the paper's direction, inside the 95% intervals"
        }
        Some((better, worse)) if clears(worse, better) => {
            "the opposite direction, beyond both 95% intervals"
        }
        Some(_) => "the opposite direction (or no difference), inside the 95% intervals",
    };
    format!("{base} ({how})")
}

/// The main fine-tuned model's and the original's alignment on every image (claim 1's figures).
fn claim1_figures(r: &Results) -> Option<(&Proportion, &Proportion)> {
    let tuned = r.models.last()?.alignment.get("all")?;
    let orig = r.models.first()?.alignment.get("all")?;
    Some((tuned, orig))
}

/// The learned reward's and the CLIP score's preference accuracy on all held-out pairs.
fn claim2_figures(r: &Results) -> Option<(&Proportion, &Proportion)> {
    let acc = |name: &str| r.reward_accuracy.get(name)?.get("all");
    Some((acc("reward")?, acc("CLIP score")?))
}

/// A markdown table: a row per group, a column per model, `rate`'s share in each cell.
fn group_table(
    md: &mut String,
    models: &[ModelRow],
    groups: &[String],
    rate: fn(&ModelRow) -> &BTreeMap<String, Proportion>,
) {
    let _ = write!(md, "| group |");
    for m in models {
        let _ = write!(md, " {} |", m.name);
    }
    let _ = writeln!(md, "\n|---|{}", "---|".repeat(models.len()));
    for g in groups {
        let _ = write!(md, "| {g} |");
        for m in models {
            let _ = write!(md, " {} |", rate(m).get(g).map_or("n/a".into(), pct));
        }
        let _ = writeln!(md);
    }
}

pub fn write(out: &Path, r: &Results) -> Result<()> {
    write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    let groups: Vec<String> = [
        "all",
        "count",
        "color",
        "background",
        "combination",
        "seen",
        "unseen",
    ]
    .map(String::from)
    .into_iter()
    .filter(|g| {
        r.models
            .first()
            .is_some_and(|m| m.alignment.contains_key(g))
    })
    .collect();
    let series: Vec<(&str, Vec<f64>, Vec<f64>)> = r
        .models
        .iter()
        .map(|m| {
            let v: Vec<f64> = groups
                .iter()
                .map(|g| 100.0 * m.alignment[g].value)
                .collect();
            let e: Vec<f64> = groups
                .iter()
                .map(|g| 100.0 * (m.alignment[g].hi - m.alignment[g].value))
                .collect();
            (m.name.as_str(), v, e)
        })
        .collect();
    write_atomic(
        &out.join("alignment.svg"),
        bar_chart(
            "Oracle alignment rate (Figure 4 analogue)",
            "% of images judged good",
            &groups,
            &series,
        )
        .as_bytes(),
    )?;
    let splits: Vec<String> = ["all", "seen", "unseen"].map(String::from).to_vec();
    let acc_series: Vec<(&str, Vec<f64>, Vec<f64>)> = r
        .reward_accuracy
        .iter()
        .map(|(name, m)| {
            let get = |s: &String| m.get(s).map_or(f64::NAN, |p| 100.0 * p.value);
            let err = |s: &String| m.get(s).map_or(f64::NAN, |p| 100.0 * (p.hi - p.value));
            (
                name.as_str(),
                splits.iter().map(get).collect(),
                splits.iter().map(err).collect(),
            )
        })
        .collect();
    write_atomic(
        &out.join("reward-accuracy.svg"),
        bar_chart(
            "Preference accuracy (Figure 3 analogue)",
            "% of pairs ranked right",
            &splits,
            &acc_series,
        )
        .as_bytes(),
    )?;

    let mut md = String::new();
    let _ = writeln!(
        md,
        "# The paper's claims in the shape world\n\n{} run, {} on this machine ({} {} steps{}, guidance {}, {} evaluation images per prompt; fine-tuning {} steps of {} images, lr {}; the pre-training loss at beta {} on {} rendered images a step).\nIntervals are 95% bootstrap intervals over prompts. Every image was judged by the oracle (`src/world/oracle.rs`); on fresh renders {} it judges {:.1}% good (all are aligned).\n",
        if r.plan.quick { "Quick" } else { "Full" },
        run_time(r),
        r.plan.steps,
        r.plan.scheduler.name().to_uppercase(),
        if r.plan.eta > 0.0
            && matches!(r.plan.scheduler, crate::diffusion::sampler::SchedulerKind::Ddim)
        {
            format!(" (eta {})", r.plan.eta)
        } else {
            String::new()
        },
        r.plan.guidance,
        r.plan.eval_images_per_prompt,
        r.plan.finetune_steps,
        r.plan.finetune_batch,
        r.plan.finetune_lr,
        r.plan.pretrain_beta,
        r.plan.pretrain_batch,
        if r.image_space == "pixel" {
            "(the model denoises pixels: no VAE)"
        } else {
            "after a round trip through the VAE"
        },
        100.0 * r.oracle_on_roundtrips
    );
    let _ = writeln!(md, "The pre-trained model's images for the training prompts, as labeled by the oracle (share good):\n");
    for (g, p) in &r.training_labels {
        let _ = writeln!(md, "- {g}: {} of {} images", pct(p), p.n);
    }
    let _ = writeln!(
        md,
        "\n## 1. Alignment of the original and the fine-tuned models (Figure 4 analogue): {}\n\n![alignment](alignment.svg)\n",
        verdict(claim1_holds(r), claim1_figures(r))
    );
    group_table(&mut md, &r.models, &groups, |m| &m.alignment);
    let _ = writeln!(
        md,
        "\nThe paper expects a clear gain, largest on counts. The last column is the main model (reward-weighted loss on labeled and reward-scored images plus the pre-training loss)."
    );
    if r.models.iter().all(|m| !m.right_but_shape.is_empty()) {
        let _ = writeln!(
            md,
            "\nWhere alignment is won or lost: the share of images right on everything but their objects' shapes (background, colors, count), in the same groups. A model that learns the captions' counts and colors but draws its shapes worse rises here and falls above.\n"
        );
        group_table(&mut md, &r.models, &groups, |m| &m.right_but_shape);
    }
    let _ = writeln!(
        md,
        "\n## 2. Preference accuracy of the learned reward vs the CLIP score (Figure 3 analogue): {}\n\n![reward accuracy](reward-accuracy.svg)\n\nPairs of one good and one bad image of the same held-out evaluation prompt (the original model's samples, oracle labels).\n\n| scorer | all | seen | unseen |\n|---|---|---|---|",
        verdict(claim2_holds(r), claim2_figures(r))
    );
    for (name, m) in &r.reward_accuracy {
        let get = |s: &str| m.get(s).map_or("n/a".into(), pct);
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} |",
            get("all"),
            get("seen"),
            get("unseen")
        );
    }
    let _ = writeln!(md, "\n## 3. Rejection sampling\n");
    match &r.rejection {
        Some((top, random)) => {
            let _ = writeln!(
                md,
                "Best {k} of {n} by reward: {} aligned; {k} at random: {}. {}\n",
                pct(top),
                pct(random),
                verdict(claim3_holds(r), Some((top, random))),
                k = r.plan.rejection_keep,
                n = r.plan.rejection_n
            );
        }
        None => {
            let _ = writeln!(md, "Not run (quick mode).\n");
        }
    }
    let _ = writeln!(
        md,
        "## 4. Fidelity and reward (Table 3 analogue)\n\nFID here is the Fréchet distance between world-CLIP image features (64-d projections) of each model's evaluation samples and of 1000 rendered world images: Inception-v3 features mean little on 32 px shapes. Shape fidelity is the world's own fidelity measure: per image, the soft IoU of its worst-drawn object with its closest shape (clean renders score about 0.98; the oracle calls a shape unrecognisable below 0.7), averaged over the images with objects. Average reward is the main learned reward on the evaluation samples.\n\n| model | FID (world-CLIP) | shape fidelity | average reward | alignment |\n|---|---|---|---|---|"
    );
    for m in &r.models {
        let shape = m
            .shape_fidelity
            .map_or("n/a".into(), |(mean, se)| format!("{mean:.3} ± {se:.3}"));
        let _ = writeln!(
            md,
            "| {} | {:.3} | {shape} | {:.3} ± {:.3} | {} |",
            m.name,
            m.fid_clip,
            m.reward_mean,
            m.reward_se,
            pct(&m.alignment["all"])
        );
    }
    let _ = writeln!(
        md,
        "\nThe images of every model, side by side with their rewards: [eval/report.html](eval/report.html)."
    );
    write_atomic(&out.join("report.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(value: f64, lo: f64, hi: f64) -> Proportion {
        Proportion {
            value,
            lo,
            hi,
            n: 320,
        }
    }

    #[test]
    fn a_gain_counts_only_beyond_both_intervals() {
        // The 2026-11-27 rejection-sampling figures: higher, but the intervals overlap.
        assert!(!clears(&p(0.031, 0.012, 0.053), &p(0.025, 0.009, 0.044)));
        assert!(clears(&p(0.20, 0.12, 0.28), &p(0.05, 0.01, 0.09)));
        assert!(!clears(&p(0.05, 0.01, 0.09), &p(0.20, 0.12, 0.28)));
    }

    #[test]
    fn a_verdict_says_where_the_figures_stand_against_their_intervals() {
        // Claim 2 on the stage-4 model (2026-11-28): the reward's way, the intervals overlapping.
        let v = verdict(
            true,
            Some((&p(0.694, 0.571, 0.804), &p(0.592, 0.471, 0.716))),
        );
        assert_eq!(
            v,
            "**reproduced** (the paper's direction, inside the 95% intervals)"
        );
        // Claim 1 there: the fine-tuned model below the original, beyond both intervals.
        let v = verdict(
            false,
            Some((&p(0.088, 0.056, 0.128), &p(0.200, 0.138, 0.266))),
        );
        assert!(
            v.starts_with("**not reproduced** here (the opposite direction, beyond"),
            "{v}"
        );
        let v = verdict(
            false,
            Some((&p(0.259, 0.184, 0.341), &p(0.209, 0.138, 0.284))),
        );
        assert!(
            v.ends_with("(the paper's direction, inside the 95% intervals)"),
            "{v}"
        );
        let v = verdict(true, Some((&p(0.20, 0.12, 0.28), &p(0.05, 0.01, 0.09))));
        assert!(v.contains("beyond both"), "{v}");
        let v = verdict(false, Some((&p(0.10, 0.05, 0.15), &p(0.10, 0.05, 0.15))));
        assert!(v.contains("no difference"), "{v}");
        assert_eq!(verdict(true, None), "**reproduced**");
    }
}
