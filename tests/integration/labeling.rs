//! The labeling server over loopback: answers, validation, undo, restart, path safety, the token,
//! 20 concurrent labelers, and `feedback import` reading the file it writes.

use crate::web_common::{image_set, raw_status, scratch, Client};
use rlhf_t2i::feedback::{FeedbackRecord, Label, Policy};
use rlhf_t2i::stages::{feedback_import, label};
use std::collections::HashMap;
use std::path::Path;

fn start(
    manifest: &Path,
    out: &Path,
    k: usize,
    token: Option<&str>,
) -> rlhf_t2i::web::RunningServer {
    let args = label::ServerArgs {
        host: "127.0.0.1",
        port: 0,
        token: token.map(str::to_string),
    };
    label::start(manifest, out, k, 3, args).unwrap().0
}

fn lines(path: &Path) -> Vec<FeedbackRecord> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn answer(c: &Client, labeler: &str, image: &str, label: &str) -> (u16, serde_json::Value) {
    c.post(
        "/api/answer",
        &serde_json::json!({ "labeler": labeler, "image_id": image, "label": label }).to_string(),
    )
}

#[test]
fn label_answer_undo_restart_and_import() {
    let dir = scratch("label");
    image_set(&dir.join("set"), 4, 6, [200, 30, 30]);
    let manifest = dir.join("set/manifest.jsonl");
    let out = dir.join("feedback.jsonl");
    let server = start(&manifest, &out, 2, None);
    let c = Client::new(server.addr);

    let (s, page) = c.get("/");
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&page).contains("good match"));
    let (s, next) = c.get_json("/api/next?labeler=Ana+Lu%C3%ADsa");
    assert_eq!(s, 200);
    let q = &next["query"];
    let images: Vec<String> = q["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(images.len(), 3);
    assert_eq!(
        next["progress"]["total"]["left"], 8,
        "4 prompts x 6 images = 8 queries"
    );
    let (s, png) = c.get(q["images"][0]["url"].as_str().unwrap());
    assert_eq!(s, 200);
    assert_eq!(&png[1..4], b"PNG");

    // Invalid answers are rejected with 400 and write nothing.
    let before = std::fs::read(&out).unwrap();
    for body in [
        serde_json::json!({ "labeler": "Kim", "image_id": images[0], "label": "great" })
            .to_string(),
        serde_json::json!({ "labeler": "Kim", "image_id": images[0], "label": "undo" }).to_string(),
        serde_json::json!({ "labeler": "", "image_id": images[0], "label": "good" }).to_string(),
        serde_json::json!({ "labeler": "Kim", "image_id": "../secret", "label": "good" })
            .to_string(),
        serde_json::json!({ "labeler": "Kim", "image_id": images[0], "label": "good", "x": 1 })
            .to_string(),
        "{not json".to_string(),
    ] {
        let (s, v) = c.post("/api/answer", &body);
        assert_eq!(s, 400, "{body}: {v}");
        assert!(v["error"].is_string());
    }
    let big = format!(
        r#"{{"labeler":"Kim","image_id":"{}","label":"good","pad":"{}"}}"#,
        images[0],
        "x".repeat(20_000)
    );
    assert_eq!(c.post("/api/answer", &big).0, 413);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "rejected requests wrote nothing"
    );

    // Answer two of three, undo the second, answer it differently.
    assert_eq!(answer(&c, "Ana Luísa", &images[0], "good").0, 200);
    assert_eq!(answer(&c, "Ana Luísa", &images[1], "bad").0, 200);
    let (s, u) = c.post("/api/undo", r#"{"labeler":"Ana Luísa"}"#);
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["undone"], images[1].as_str());
    assert_eq!(
        u["next"]["query"]["images"][1]["answer"],
        serde_json::Value::Null
    );
    assert_eq!(u["next"]["query"]["images"][0]["answer"], "good");
    assert_eq!(answer(&c, "Ana Luísa", &images[1], "skip").0, 200);
    assert_eq!(lines(&out).len(), 4, "good, bad, undo, skip");
    server.stop();

    // A restarted server hands the half-answered query back, with the answers shown.
    let server = start(&manifest, &out, 2, None);
    let c = Client::new(server.addr);
    let (_, next) = c.get_json("/api/next?labeler=Ana%20Lu%C3%ADsa");
    assert_eq!(next["query"]["id"], q["id"]);
    assert_eq!(next["query"]["images"][1]["answer"], "skip");
    assert_eq!(next["progress"]["mine"], 2);
    assert_eq!(answer(&c, "Ana Luísa", &images[2], "good").0, 200);
    // Another labeler gets a different query while fresh ones remain.
    let (_, other) = c.get_json("/api/next?labeler=Kim");
    assert_ne!(other["query"]["id"], q["id"]);
    server.stop();

    // `feedback import` reads the file unchanged; the undone "bad" does not count.
    let labels = dir.join("labels.jsonl");
    let r = feedback_import::run(
        &manifest,
        std::slice::from_ref(&out),
        Policy::Majority,
        false,
        0,
        &labels,
    )
    .unwrap();
    assert_eq!(
        r.labels.len(),
        2,
        "image 0 good, image 2 good; image 1 was skipped"
    );
    assert!(r.labels.iter().all(|l| l.target == 1.0 && l.votes_bad == 0));
}

#[test]
fn images_only_by_id_and_the_token() {
    let dir = scratch("paths");
    let records = image_set(&dir.join("set"), 1, 3, [30, 30, 200]);
    std::fs::write(dir.join("secret.txt"), "secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("set/images/link.png")).unwrap();
    let out = dir.join("feedback.jsonl");
    let token = "correct-horse-battery-staple";
    let server = start(&dir.join("set/manifest.jsonl"), &out, 2, Some(token));
    let mut c = Client::new(server.addr);

    // Without the token, nothing: not the page, not the API, not an image.
    let id = &records[0].id;
    for p in ["/", "/api/next?labeler=a", &format!("/image/{id}")] {
        assert_eq!(c.get(p).0, 401, "{p}");
    }
    assert_eq!(c.get("/?token=wrong-token-wrong-token").0, 401);
    c.token = Some(token.into());
    assert_eq!(c.get(&format!("/image/{id}")).0, 200);
    for p in [
        "/image/../manifest.jsonl".to_string(),
        "/image/..%2F..%2Fsecret.txt".into(),
        "/image/%2e%2e%2fsecret.txt".into(),
        "/image//etc/passwd".into(),
        "/image/%2Fetc%2Fpasswd".into(),
        format!("/image/images%2F{id}.png"),
        format!("/image/images/{id}.png"),
        "/image/link.png".into(),
        "/image/link".into(),
        "/images/link.png".into(),
        "/manifest.jsonl".into(),
    ] {
        let (s, body) = c.get(&p);
        assert_eq!(s, 404, "{p}");
        assert!(!String::from_utf8_lossy(&body).contains("secret"), "{p}");
    }
    // Paths a client would normalise, sent raw (with the token as a query parameter).
    for line in [
        format!("GET /image/../../secret.txt?token={token} HTTP/1.1"),
        format!("GET /../secret.txt?token={token} HTTP/1.1"),
        format!("GET /image/..\\..\\secret.txt?token={token} HTTP/1.1"),
    ] {
        assert_eq!(raw_status(server.addr, &line), 404, "{line}");
    }
    // The query-string token sets a cookie so the page's own requests carry it.
    let resp = ureq::get(&format!("{}/?token={token}", c.base))
        .call()
        .unwrap();
    let cookie = resp.header("Set-Cookie").unwrap().to_string();
    assert!(cookie.starts_with(&format!("rlhf_t2i_token={token}")) && cookie.contains("HttpOnly"));
    let with_cookie = ureq::get(&format!("{}/api/next?labeler=a", c.base))
        .set("Cookie", &format!("other=1; rlhf_t2i_token={token}"))
        .call()
        .unwrap();
    assert_eq!(with_cookie.status(), 200);
    server.stop();

    // Any non-loopback host needs a token; one is generated when none is given.
    use rlhf_t2i::web::ServeOptions;
    let (o, generated) = ServeOptions::resolve("0.0.0.0", 0, None).unwrap();
    assert!(generated && o.token.as_ref().unwrap().len() == 32);
    assert!(ServeOptions::resolve("0.0.0.0", 0, Some("short".into())).is_err());
    assert!(ServeOptions::resolve("127.0.0.1", 0, None)
        .unwrap()
        .0
        .token
        .is_none());

    // A manifest entry that is a symlink out of its folder is refused at start-up.
    let mut bad = records.clone();
    bad[0].path = "images/link.png".into();
    rlhf_t2i::io::jsonl::write_jsonl(&dir.join("set/bad.jsonl"), &bad).unwrap();
    let args = label::ServerArgs {
        host: "127.0.0.1",
        port: 0,
        token: None,
    };
    let err = label::start(
        &dir.join("set/bad.jsonl"),
        &dir.join("f2.jsonl"),
        2,
        3,
        args,
    )
    .err();
    let msg = format!(
        "{:#}",
        err.expect("a symlink out of the folder must be refused")
    );
    assert!(msg.contains("outside"), "{msg}");
}

/// 20 labelers post as fast as they can (answers, corrections and undos) for
/// `RLHF_T2I_STRESS_SECS` seconds (default 30): every acknowledged record is in the file exactly
/// once, and nothing unacknowledged is.
#[test]
fn twenty_concurrent_labelers_lose_nothing() {
    let secs: u64 = std::env::var("RLHF_T2I_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = scratch("stress");
    image_set(&dir.join("set"), 30, 6, [30, 160, 30]);
    let manifest = dir.join("set/manifest.jsonl");
    let out = dir.join("feedback.jsonl");
    let server = start(&manifest, &out, 2, None);
    let addr = server.addr;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let threads: Vec<_> = (0..20)
        .map(|t| {
            std::thread::spawn(move || {
                let c = Client::new(addr);
                let me = format!("labeler {t}");
                let mut acked: Vec<(String, String)> = Vec::new();
                let mut last_images: Vec<String> = Vec::new();
                let mut n = t as u64;
                while std::time::Instant::now() < deadline {
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let (s, next) = c.get_json(&format!("/api/next?labeler=labeler+{t}"));
                    assert_eq!(s, 200);
                    let todo: Vec<String> = match next["query"]["images"].as_array() {
                        Some(imgs) => imgs
                            .iter()
                            .filter(|i| i["answer"].is_null())
                            .map(|i| i["id"].as_str().unwrap().to_string())
                            .collect(),
                        // Nothing left: correct earlier answers.
                        None => last_images.clone(),
                    };
                    for img in todo {
                        let label = ["good", "bad", "skip"][(n >> 33) as usize % 3];
                        let (s, v) = answer(&c, &me, &img, label);
                        assert_eq!(s, 200, "{v}");
                        assert_eq!(v["saved"], true);
                        acked.push((img.clone(), label.to_string()));
                        if !last_images.contains(&img) {
                            last_images.push(img);
                        }
                    }
                    if (n >> 40).is_multiple_of(5) {
                        let (s, v) = c.post(
                            "/api/undo",
                            &serde_json::json!({ "labeler": me }).to_string(),
                        );
                        if s == 200 {
                            acked.push((v["undone"].as_str().unwrap().to_string(), "undo".into()));
                        } else {
                            assert_eq!(s, 400, "{v}");
                        }
                    }
                }
                (me, acked)
            })
        })
        .collect();
    let mut expected: HashMap<(String, String, String), usize> = HashMap::new();
    let mut total = 0;
    for t in threads {
        let (me, acked) = t.join().unwrap();
        for (img, label) in acked {
            *expected.entry((me.clone(), img, label)).or_default() += 1;
            total += 1;
        }
    }
    server.stop();
    let recs = lines(&out);
    let mut found: HashMap<(String, String, String), usize> = HashMap::new();
    for r in &recs {
        let label = serde_json::to_value(r.label)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        *found
            .entry((r.labeler.clone(), r.image_id.clone(), label))
            .or_default() += 1;
    }
    println!(
        "{} acknowledged records from 20 labelers in {secs} s ({:.0}/s); {} in the file",
        total,
        total as f64 / secs as f64,
        recs.len()
    );
    assert!(total > 100, "the server answered only {total} requests");
    assert_eq!(recs.len(), total);
    assert_eq!(found, expected);
    assert!(recs.iter().any(|r| r.label == Label::Undo));
}
