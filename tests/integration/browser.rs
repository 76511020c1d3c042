//! The labeling and comparison pages in a real browser (Debian's chromium + chromedriver, driven
//! over the WebDriver protocol): type a name, label three images with the keyboard, reload, and
//! see the progress kept; vote on the comparison page with the keyboard. Screenshots of both
//! pages go to `target/screenshots/`. Without chromedriver the test says so and passes.

use crate::web_common::{image_set, scratch};
use rlhf_t2i::feedback::FeedbackRecord;
use rlhf_t2i::stages::{compare, label};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

/// A chromedriver process and one headless browser session.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    fn start() -> Result<Browser, String> {
        let driver = std::env::var_os("CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| find(&["chromedriver"]))
            .ok_or("chromedriver not found (Debian: apt-get install chromium chromium-driver)")?;
        let chrome = std::env::var_os("CHROME")
            .map(PathBuf::from)
            .or_else(|| find(&["chromium", "chromium-browser", "google-chrome"]))
            .ok_or("chromium not found (Debian: apt-get install chromium)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let driver = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", driver.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                         "--disable-dev-shm-usage"]
            }
        }}});
        let deadline = Instant::now() + Duration::from_secs(20);
        let v = loop {
            match b.call("POST", "/session", Some(caps.clone())) {
                Ok(v) => break v,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("no browser session: {e}"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        b.session = v["sessionId"].as_str().ok_or("no session id")?.to_string();
        Ok(b)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let r = match body {
            Some(b) => ureq::request(method, &url).send_json(b),
            None => ureq::request(method, &url).call(),
        };
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(e.to_string()),
        };
        let ok = resp.status() == 200;
        let v: Value = resp.into_json().map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(v.to_string())
        }
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })))
            .unwrap();
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
        .unwrap()
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self
            .call(
                "POST",
                &self.s("/element"),
                Some(json!({ "using": "css selector", "value": css })),
            )
            .unwrap();
        let id = el
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        self.call(
            "POST",
            &self.s(&format!("/element/{id}/value")),
            Some(json!({ "text": text })),
        )
        .unwrap();
    }

    /// Press keys on the page (WebDriver key codes: "\u{E012}" is the left arrow).
    fn keys(&self, keys: &[&str]) {
        let mut actions = Vec::new();
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.call("POST", &self.s("/actions"), Some(body)).unwrap();
    }

    /// Wait until `script` returns true.
    fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.js(script) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, path: &Path) {
        let loaded = "return [...document.images].every(i => i.complete && i.naturalWidth > 0)";
        let t0 = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.js(loaded) != json!(true) {
            let states = self
                .js("return [...document.images].map(i => [i.src, i.complete, i.naturalWidth])");
            assert!(
                Instant::now() < deadline,
                "images did not load for {}: {states}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("images loaded after {:.1} s", t0.elapsed().as_secs_f64());
        let b64 = self.call("GET", &self.s("/screenshot"), None).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, base64_decode(b64.as_str().unwrap())).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &self.s(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (val(c) as u32) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

#[test]
fn pages_work_in_a_browser() {
    let mut browser = match Browser::start() {
        Ok(b) => b,
        Err(why) => {
            println!("SKIPPED browser test: {why}");
            eprintln!("SKIPPED browser test: {why}");
            return;
        }
    };
    let dir = scratch("browser");
    image_set(&dir.join("set"), 3, 6, [40, 90, 200]);
    let manifest = dir.join("set/manifest.jsonl");
    let out = dir.join("feedback.jsonl");
    let args = || label::ServerArgs {
        host: "127.0.0.1",
        port: 0,
        token: Some("browser-test-token-0123".into()),
    };
    let (server, url, _) = label::start(&manifest, &out, 2, 3, args()).unwrap();
    let url = url.replace("<this machine's address>", "127.0.0.1");

    browser.goto(&url);
    browser.type_into("#name", "Kim\n");
    browser.wait_for(
        "the first query",
        "return document.getElementById('prompt').textContent.length > 0",
    );
    browser.screenshot(&screenshots().join("label-start.png"));
    browser.keys(&["g", "b"]);
    browser.wait_for("two answers", "return document.querySelectorAll('.card[data-answer=\"good\"], .card[data-answer=\"bad\"]').length == 2");
    browser.keys(&["\u{E012}"]); // left arrow: back to image 2
    browser.keys(&["s"]); // re-answer image 2 as skip; the highlight moves to image 3, still open
    browser.wait_for(
        "the correction",
        "return document.querySelector('.card[data-answer=\"skip\"]') !== null",
    );
    browser.screenshot(&screenshots().join("label-answered.png"));
    browser.keys(&["g"]); // image 3 good: the query is complete
    browser.wait_for(
        "the next query",
        "return document.getElementById('progress').textContent.includes('You: 3 answers')",
    );
    let recs: Vec<FeedbackRecord> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let labels: Vec<String> = recs.iter().map(|r| format!("{:?}", r.label)).collect();
    assert_eq!(
        labels,
        ["Good", "Bad", "Skip", "Good"],
        "keyboard answers reach the file"
    );
    assert!(recs.iter().all(|r| r.labeler == "Kim"));

    // Reload: the name is remembered and the progress kept.
    browser.goto(&url);
    browser.wait_for(
        "progress after reload",
        "return document.getElementById('progress').textContent.includes('You: 3 answers')",
    );
    let shown = browser.js("return document.getElementById('prompt').textContent");
    assert!(shown.as_str().is_some_and(|s| !s.is_empty()));
    // Undo with the keyboard brings the last answer's query back.
    browser.keys(&["u"]);
    browser.wait_for(
        "the undo",
        "return document.getElementById('status').textContent.startsWith('undone')",
    );
    let size = browser.js("const r = document.querySelector('.card img').getBoundingClientRect(); return [r.width, r.height]");
    let w = size[0].as_f64().unwrap();
    assert!(w >= 300.0, "images are {w} px wide: too small to judge");
    server.stop();

    // The comparison page, in a fresh browser session: two sets, both questions answered with
    // arrow keys.
    drop(browser);
    browser = Browser::start().unwrap();
    image_set(&dir.join("b"), 3, 4, [200, 60, 40]);
    let votes = dir.join("votes.jsonl");
    let (server, url, _) =
        compare::start(&dir.join("set"), &dir.join("b"), &votes, 4, 0, args()).unwrap();
    let url = url.replace("<this machine's address>", "127.0.0.1");
    browser.goto(&url);
    browser.type_into("#name", "Lee\n");
    browser.wait_for(
        "the first comparison",
        "return document.querySelectorAll('#left img').length == 4",
    );
    browser.screenshot(&screenshots().join("compare.png"));
    browser.keys(&["\u{E012}", "\u{E015}"]); // alignment: left; quality: tie
    browser.wait_for(
        "the vote",
        "return document.getElementById('progress').textContent.includes('You: 1 /')",
    );
    let text = std::fs::read_to_string(&votes).unwrap();
    let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let left_is_a = v["a_side"] == "left";
    assert_eq!(v["alignment"], if left_is_a { "a" } else { "b" });
    assert_eq!(v["quality"], "tie");
    server.stop();
    println!("screenshots in {}", screenshots().display());
}
