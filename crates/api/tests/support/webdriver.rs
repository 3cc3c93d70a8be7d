//! A real headless Chromium driven over W3C WebDriver (Debian's `chromium` and
//! `chromium-driver`): just the commands the page tests use, spoken with reqwest.
//!
//! `FLASH_TEST_CHROMEDRIVER` names the driver (default `chromedriver` on `PATH`) and
//! `FLASH_TEST_CHROMIUM` the browser (default `/usr/bin/chromium`). Without them the page
//! tests print why and skip, except under `CI`, where they fail. With `FLASH_SCREENSHOT_DIR`
//! set, [`Browser::screenshot`] writes PNGs there (how `docs/img/` is refreshed).

// Each page test binary uses some of these commands, none uses all.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// The W3C key that holds an element's id in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long to wait for the driver to start or a page to show something.
const WAIT: Duration = Duration::from_secs(20);

/// A chromedriver process and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

/// An element of the current page.
pub struct Element(String);

fn find_program(var: &str, default: &str) -> Option<PathBuf> {
    let named = std::env::var_os(var).map(PathBuf::from);
    let candidate = named.unwrap_or_else(|| PathBuf::from(default));
    if candidate.components().count() > 1 {
        return candidate.is_file().then_some(candidate);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(&candidate))
            .find(|p| p.is_file())
    })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or `None` (with the reason
    /// printed) when either is missing outside CI.
    pub async fn start() -> Option<Browser> {
        let driver = find_program("FLASH_TEST_CHROMEDRIVER", "chromedriver");
        let chromium = find_program("FLASH_TEST_CHROMIUM", "/usr/bin/chromium");
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            let why = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver, \
                       or set FLASH_TEST_CHROMIUM and FLASH_TEST_CHROMEDRIVER)";
            assert!(std::env::var_os("CI").is_none(), "{why}");
            println!("skipped: {why}");
            return None;
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("local addr").port()
        };
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver.display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("reqwest client");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready {
                let body: Value = r.json().await.unwrap_or_default();
                if body["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(started.elapsed() < WAIT, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", "--hide-scrollbars"]
            }
        }}});
        let mut browser = Browser {
            driver: child,
            base,
            session: String::new(),
            http,
        };
        let answer = browser.command("POST", "/session", caps).await;
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Some(browser)
    }

    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let answer: Value = resp.json().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            answer["value"]["error"].is_null(),
            "{method} {path} failed: {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.command("POST", &self.path("/url"), json!({ "url": url })).await;
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Element {
        let v = self
            .command(
                "POST",
                &self.path("/element"),
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        Element(
            v[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}: {v}"))
                .to_string(),
        )
    }

    /// Types `text` into an element.
    pub async fn type_into(&self, element: &Element, text: &str) {
        let path = self.path(&format!("/element/{}/value", element.0));
        self.command("POST", &path, json!({ "text": text })).await;
    }

    /// Empties an input or text area.
    pub async fn clear(&self, element: &Element) {
        let path = self.path(&format!("/element/{}/clear", element.0));
        self.command("POST", &path, json!({})).await;
    }

    /// Clicks an element.
    pub async fn click(&self, element: &Element) {
        let path = self.path(&format!("/element/{}/click", element.0));
        self.command("POST", &path, json!({})).await;
    }

    /// An element's rendered text.
    pub async fn text(&self, element: &Element) -> String {
        let path = self.path(&format!("/element/{}/text", element.0));
        self.command("GET", &path, Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs a script in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.command(
            "POST",
            &self.path("/execute/sync"),
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// Fails when an element of the page reaches past the viewport's right edge (naming it and
    /// where it ends), or when the page loaded anything from outside `base`.
    pub async fn assert_fits_and_loads_only_from(&self, base: &str) {
        let wider = self
            .eval(
                "return Array.from(document.querySelectorAll('body *'))\
                 .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)\
                 .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
            )
            .await;
        assert_eq!(wider, json!([]), "wider than the viewport");
        for r in self.loaded_resources().await {
            assert!(r.starts_with(base), "{r} is not from {base}");
        }
    }

    /// Every resource the page loaded, by URL.
    pub async fn loaded_resources(&self) -> Vec<String> {
        let v = self
            .eval("return performance.getEntriesByType('resource').map(e => e.name);")
            .await;
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Runs a Chrome DevTools Protocol command (chromedriver's `goog/cdp/execute`).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.command(
            "POST",
            &self.path("/goog/cdp/execute"),
            json!({ "cmd": cmd, "params": params }),
        )
        .await
    }

    /// Lays pages out as a phone of `width`×`height` CSS pixels does (touch, mobile viewport).
    pub async fn emulate_phone(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": true }),
        )
        .await;
    }

    /// Makes `prefers-color-scheme` match `scheme` (`"dark"`, `"light"`).
    pub async fn prefer_color_scheme(&self, scheme: &str) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
    }

    /// Waits until the text of `css` satisfies `ok`; the text. The element may appear later
    /// (the page may still be navigating), so a missing element only means "not yet".
    pub async fn wait_for_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        let script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;";
        loop {
            let found = self
                .command(
                    "POST",
                    &self.path("/execute/sync"),
                    json!({ "script": script, "args": [css] }),
                )
                .await;
            let text = found.as_str().unwrap_or("(no such element yet)").to_string();
            if found.is_string() && ok(&text) {
                return text;
            }
            assert!(started.elapsed() < WAIT, "{css} never matched; last text: {text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes a screenshot of the viewport as `<FLASH_SCREENSHOT_DIR>/<name>.png` when that
    /// variable is set; always checks that the browser can take one.
    pub async fn screenshot(&self, name: &str) {
        let png = self.command("GET", &self.path("/screenshot"), Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        if let Some(dir) = std::env::var_os("FLASH_SCREENSHOT_DIR") {
            let path = PathBuf::from(dir).join(format!("{name}.png"));
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
    }
}

impl Browser {
    /// Ends the session (closing Chromium) and the driver.
    pub async fn quit(mut self) {
        let path = self.path("");
        self.command("DELETE", &path, Value::Null).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    /// Stops the driver; after a panic, before `quit`, its Chromium goes with it.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
