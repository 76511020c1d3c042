//! The evaluation report as one HTML file: the Table 3 comparison, rewards by category and
//! split, a chart, and every prompt's images from each model side by side with their rewards.
//! Images are linked relatively (`samples/<model>/images/...`), so the output folder can be
//! moved or served as it is.

use super::plot::bar_chart;
use crate::eval::results::{EvalReport, ModelEval, Summary};
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

type Groups = BTreeMap<String, Summary>;

/// A table of one measure: a row per model, a column per category then per split.
fn summary_table(
    h: &mut String,
    title: &str,
    r: &EvalReport,
    categories: &[String],
    splits: &[String],
    pick: impl Fn(&ModelEval) -> (&Groups, &Groups),
    digits: usize,
) {
    let _ = write!(h, "<h2>{}</h2><table><tr><th>model</th>", esc(title));
    for k in categories.iter().chain(splits) {
        let _ = write!(h, "<th>{}</th>", esc(k));
    }
    h.push_str("</tr>");
    for m in &r.models {
        let _ = write!(h, "<tr><td>{}</td>", esc(&m.name));
        let (by_cat, by_split) = pick(m);
        for (k, map) in categories
            .iter()
            .map(|k| (k, by_cat))
            .chain(splits.iter().map(|k| (k, by_split)))
        {
            match map.get(k) {
                Some(s) => {
                    let _ = write!(h, "<td>{:.digits$} ± {:.digits$}</td>", s.mean, s.se);
                }
                None => h.push_str("<td>-</td>"),
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

pub fn eval_report(r: &EvalReport) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>rlhf-t2i evaluation</title><style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1400px}}
table{{border-collapse:collapse;margin:0.5rem 0 1.5rem}}th,td{{border:1px solid #ccc;padding:0.35rem 0.7rem;text-align:right}}
th:first-child,td:first-child{{text-align:left}}th{{background:#f3f3f3}}
.prompt{{border-top:1px solid #ddd;padding:0.8rem 0}}.row{{display:flex;align-items:flex-start;gap:1rem;margin:0.3rem 0}}
.label{{width:9rem;font-weight:600;padding-top:0.3rem}}figure{{margin:0;text-align:center;font-size:0.85rem}}
figure img{{width:160px;height:160px;image-rendering:pixelated;border:1px solid #bbb;display:block}}
.meta{{color:#666;font-size:0.9rem}}</style></head><body>
<h1>rlhf-t2i evaluation</h1><p class="meta">prompts: {} &middot; {} images per prompt &middot; {} {} steps, guidance {}</p>"#,
        esc(&r.prompts),
        r.images_per_prompt,
        r.sampling.scheduler.name(),
        r.sampling.steps,
        r.sampling.guidance
    );
    h.push_str("<h2>Fidelity and alignment (Table 3)</h2><table><tr><th>model</th><th>images</th><th>FID</th><th>FID images (model / reference)</th><th>average reward</th><th>CLIP score</th></tr>");
    for m in &r.models {
        let (fid, n) = m.fid.as_ref().map_or(("-".into(), "-".into()), |f| {
            (
                format!("{:.2}", f.value),
                format!("{} / {}", f.model_images, f.reference_count()),
            )
        });
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{fid}</td><td>{n}</td><td>{:.4} ± {:.4}</td><td>{:.2} ± {:.2}</td></tr>",
            esc(&m.name),
            m.reward.n,
            m.reward.mean,
            m.reward.se,
            m.clip_score.mean,
            m.clip_score.se
        );
    }
    h.push_str("</table><p class=\"meta\">± is one standard error over images. FID is biased upward at small sample counts: compare models only at equal counts.</p>");
    let categories: Vec<String> = r.models[0].reward_by_category.keys().cloned().collect();
    let splits: Vec<String> = r.models[0].reward_by_split.keys().cloned().collect();
    summary_table(
        &mut h,
        "Average reward by category and split",
        r,
        &categories,
        &splits,
        |m| (&m.reward_by_category, &m.reward_by_split),
        4,
    );
    summary_table(
        &mut h,
        "Average CLIP score by category and split",
        r,
        &categories,
        &splits,
        |m| (&m.clip_by_category, &m.clip_by_split),
        2,
    );
    let series: Vec<(&str, Vec<f64>, Vec<f64>)> = r
        .models
        .iter()
        .map(|m| {
            let get = |k: &String| {
                m.reward_by_category
                    .get(k)
                    .map_or((f64::NAN, f64::NAN), |s| (s.mean, s.se))
            };
            (
                m.name.as_str(),
                categories.iter().map(|k| get(k).0).collect(),
                categories.iter().map(|k| get(k).1).collect(),
            )
        })
        .collect();
    h.push_str(&bar_chart(
        "average reward by category",
        "reward",
        &categories,
        &series,
    ));
    h.push_str("<h2>Samples</h2>");
    let mut by_prompt: BTreeMap<&str, Vec<(usize, &crate::io::scores::ScoreRecord)>> =
        BTreeMap::new();
    for (mi, m) in r.models.iter().enumerate() {
        for s in &m.scores {
            by_prompt
                .entry(s.prompt.id.as_str())
                .or_default()
                .push((mi, s));
        }
    }
    for items in by_prompt.values() {
        let p = &items[0].1.prompt;
        let _ = write!(
            h,
            r#"<div class="prompt"><div><strong>{}</strong> <span class="meta">{} &middot; {} objects</span></div>"#,
            esc(&p.text),
            p.category.as_str(),
            p.split.as_str()
        );
        for (mi, m) in r.models.iter().enumerate() {
            let _ = write!(
                h,
                r#"<div class="row"><div class="label">{}</div>"#,
                esc(&m.name)
            );
            for (_, s) in items.iter().filter(|(i, _)| *i == mi) {
                let src = format!("samples/{}/{}", m.name, s.path);
                let _ = write!(
                    h,
                    r#"<figure><img src="{}" alt="{}"><figcaption>reward {:.3}</figcaption></figure>"#,
                    esc(&src),
                    esc(&p.text),
                    s.reward
                );
            }
            h.push_str("</div>");
        }
        h.push_str("</div>");
    }
    if let Some(human) = &r.human {
        human_section(&mut h, human);
    }
    h.push_str("</body></html>\n");
    h
}

/// The blind A/B votes: win / lose / tie per group for both questions (Figure 4), and the share of
/// prompts by number of raters preferring A (Appendix C).
fn human_section(h: &mut String, s: &crate::compare::summary::Summary) {
    let _ = write!(
        h,
        "<h2>Human evaluation (blind A/B)</h2><p class=\"meta\">A = {}, B = {}: {} votes on {} prompts by {} raters. Win = A preferred.</p>",
        esc(&s.a),
        esc(&s.b),
        s.votes,
        s.prompts,
        s.raters
    );
    for q in [&s.alignment, &s.quality] {
        let _ = write!(
            h,
            "<h3>{}</h3><table><tr><th>group</th><th>votes</th><th>win</th><th>lose</th><th>tie</th></tr>",
            esc(&q.question)
        );
        for g in &q.groups {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.1}%</td><td>{:.1}%</td></tr>",
                esc(&g.group),
                g.votes,
                g.win_pct(),
                g.lose_pct(),
                g.tie_pct()
            );
        }
        h.push_str("</table><table><tr><th>raters preferring A</th>");
        for v in 0..q.positive_votes.len() {
            let _ = write!(h, "<th>{v}</th>");
        }
        h.push_str("</tr><tr><td>share of prompts</td>");
        for p in &q.positive_votes {
            let _ = write!(h, "<td>{p:.1}%</td>");
        }
        h.push_str("</tr></table>");
    }
}
