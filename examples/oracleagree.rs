//! The oracle against a person's labels on generated images: `oracleagree GRID.png LABELS.jsonl`
//! (32 px images, 16 per row; one `world::label::PersonLabel` per line, labeled without seeing
//! the oracle's verdicts; `tests/fixtures/world-labels/` has two). Prints each disagreement with
//! every object's shape scores, and the agreement on the images the person did not skip.
use rlhf_t2i::world::label::person_agreement;
use rlhf_t2i::world::scene::Shape;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let agreement = person_agreement(a[1].as_ref(), a[2].as_ref())?;
    for (l, obs, v) in &agreement.disagreements {
        println!(
            "{:3}: person {}, oracle {} ({} {} {} on {})",
            l.index,
            l.person,
            if v.good { "good" } else { "bad" },
            l.count,
            l.color,
            l.shape,
            l.background
        );
        for r in &v.reasons {
            println!("       {r}");
        }
        for (k, o) in obs.objects.iter().enumerate() {
            let scores: Vec<String> = Shape::ALL
                .iter()
                .zip(o.shape_scores)
                .map(|(s, v)| format!("{} {v:.2}", s.name()))
                .collect();
            println!("       object {}: {}", k + 1, scores.join(", "));
        }
    }
    println!("(person, oracle good) -> images: {:?}", agreement.table);
    println!(
        "agreement on {} labeled images: {} ({:.1}%)",
        agreement.judged,
        agreement.agreed,
        100.0 * agreement.agreed as f64 / agreement.judged.max(1) as f64
    );
    Ok(())
}
