//! The blind A/B comparison server: the rater cannot tell A from its URL or position, votes are
//! mapped back to A/B through the recorded side, and the summary counts them.

use crate::web_common::{image_set, scratch, Client};
use rlhf_t2i::compare::{Choice, Side, VoteRecord};
use rlhf_t2i::stages::{compare, label::ServerArgs};

const RED: [u8; 3] = [210, 20, 20];
const BLUE: [u8; 3] = [20, 20, 210];

/// Whether the PNG at `url` is mostly red (set A's color here).
fn is_red(c: &Client, url: &str) -> bool {
    let (s, bytes) = c.get(url);
    assert_eq!(s, 200, "{url}");
    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let (r, b) = img
        .pixels()
        .fold((0u64, 0u64), |(r, b), p| (r + p[0] as u64, b + p[2] as u64));
    r > b
}

#[test]
fn blind_votes_map_back_to_a_and_b() {
    let dir = scratch("compare");
    image_set(&dir.join("a"), 6, 5, RED);
    image_set(&dir.join("b"), 6, 4, BLUE);
    let out = dir.join("votes.jsonl");
    let start = || {
        let args = ServerArgs {
            host: "127.0.0.1",
            port: 0,
            token: None,
        };
        compare::start(&dir.join("a"), &dir.join("b"), &out, 4, 7, args)
            .unwrap()
            .0
    };
    let server = start();
    let c = Client::new(server.addr);
    let mut sides = Vec::new();
    // Two raters: "pro" always prefers the red set (A) for alignment and calls quality a tie;
    // "anti" prefers blue (B) for alignment and red for quality.
    for rater in ["pro", "anti"] {
        loop {
            let (s, next) = c.get_json(&format!("/api/next?rater={rater}"));
            assert_eq!(s, 200);
            let q = &next["query"];
            if q.is_null() {
                break;
            }
            let left: Vec<&str> = q["left"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect();
            let right: Vec<&str> = q["right"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect();
            assert_eq!(
                (left.len(), right.len()),
                (4, 4),
                "first 4 images of each set"
            );
            for u in left.iter().chain(&right) {
                assert!(
                    u.starts_with("/image/") && u.len() == "/image/".len() + 20,
                    "opaque id: {u}"
                );
            }
            let red_left = is_red(&c, left[0]);
            assert!(left.iter().all(|u| is_red(&c, u) == red_left));
            assert!(right.iter().all(|u| is_red(&c, u) != red_left));
            sides.push(red_left);
            let (red, blue) = if red_left {
                ("left", "right")
            } else {
                ("right", "left")
            };
            let (alignment, quality) = if rater == "pro" {
                (red, "tie")
            } else {
                (blue, red)
            };
            let body = serde_json::json!({
                "rater": rater, "prompt_id": q["id"], "alignment": alignment, "quality": quality,
            })
            .to_string();
            let (s, v) = c.post("/api/vote", &body);
            assert_eq!(s, 200, "{v}");
            assert_eq!(
                c.post("/api/vote", &body).0,
                400,
                "a second vote on the same prompt"
            );
        }
    }
    assert!(
        sides.iter().any(|&l| l) && sides.iter().any(|&l| !l),
        "A is shown on both sides"
    );
    let (s, _) = c.post(
        "/api/vote",
        r#"{"rater":"x","prompt_id":"nope","alignment":"left","quality":"tie"}"#,
    );
    assert_eq!(s, 400);
    server.stop();

    let votes: Vec<VoteRecord> = rlhf_t2i::io::jsonl::read_jsonl(&out).unwrap();
    assert_eq!(votes.len(), 12);
    for v in &votes {
        let want = if v.rater == "pro" {
            (Choice::A, Choice::Tie)
        } else {
            (Choice::B, Choice::A)
        };
        assert_eq!((v.alignment, v.quality), want);
        assert_eq!(v.a_images.len(), 4);
        assert!(matches!(v.a_side, Side::Left | Side::Right));
    }
    // A restart resumes: both raters are done.
    let server = start();
    let c = Client::new(server.addr);
    let (_, next) = c.get_json("/api/next?rater=pro");
    assert!(next["query"].is_null());
    assert_eq!(next["progress"]["mine"], 6);
    server.stop();

    let s = compare::summary(&out).unwrap();
    let all = &s.alignment.groups[0];
    assert_eq!(
        (all.group.as_str(), all.votes, all.win, all.lose, all.tie),
        ("all", 12, 6, 6, 0)
    );
    let q = &s.quality.groups[0];
    assert_eq!((q.win, q.lose, q.tie), (6, 0, 6));
    // Every prompt got exactly one rater preferring A on alignment.
    assert_eq!(s.alignment.positive_votes, vec![0.0, 100.0, 0.0]);
    assert_eq!(s.quality.positive_votes, vec![0.0, 100.0, 0.0]);
    let table = s.table();
    assert!(
        table.contains("win  50.0%") && table.contains("seen"),
        "{table}"
    );
    assert!(dir.join("votes.summary.json").exists());
}
