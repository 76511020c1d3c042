//! The oracle's verdicts on a generated manifest, per category (and how many images are right on
//! everything but their objects' shapes), with the commonest reasons:
//! `worldjudge MANIFEST [FEEDBACK_OUT.jsonl]` (or `worldjudge --prompts OUT.jsonl` to write the 80 world eval prompts).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: worldjudge MANIFEST [FEEDBACK_OUT.jsonl] | worldjudge --prompts OUT.jsonl";
    anyhow::ensure!(a.len() >= 2, "{usage}");
    if a[1] == "--prompts" {
        anyhow::ensure!(a.len() == 3, "{usage}");
        let p = rlhf_t2i::world::dataset::eval_prompts(0)?;
        return rlhf_t2i::io::jsonl::write_jsonl(std::path::Path::new(&a[2]), &p);
    }
    let j = rlhf_t2i::world::label::judge_manifest(std::path::Path::new(&a[1]))?;
    if let Some(out) = a.get(2) {
        rlhf_t2i::world::label::write_feedback(&j, std::path::Path::new(out))?;
    }
    let mut by: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for x in &j {
        for k in ["all".to_string(), format!("{:?}", x.record.prompt.category)] {
            let e = by.entry(k).or_default();
            e.0 += x.good as usize;
            e.1 += x.right_but_shape as usize;
            e.2 += 1;
        }
        for r in &x.reasons {
            let key: String = r.split(':').next().unwrap_or(r).chars().take(40).collect();
            *reasons.entry(key).or_default() += 1;
        }
    }
    let mut text = String::new();
    for (k, (g, s, n)) in by {
        let pct = |x: usize| 100.0 * x as f64 / n as f64;
        writeln!(
            text,
            "{k:<12} {g:>4}/{n:<4} {:>5.1}%   right but for shapes {s:>4} {:>5.1}%",
            pct(g),
            pct(s)
        )?;
    }
    let mut r: Vec<_> = reasons.into_iter().collect();
    r.sort_by_key(|x| std::cmp::Reverse(x.1));
    for (k, n) in r.iter().take(8) {
        writeln!(text, "  {n:>4}  {k}")?;
    }
    // One write; a reader that stops early (`| head`) is not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
