//! The studio in a real browser: `genlab serve` on a trained run, driven by headless Chromium
//! through WebDriver (`tests/browser/studio.py`, Python's selenium with Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs). The script moves a slider and checks that the
//! decoded image changed, hovers and clicks the map, interpolates, samples, draws a digit and
//! uploads a file and checks their reconstruction appears, inverts it with a GAN, picks a
//! class of a conditional run, runs the memorisation check, reads
//! the training curves and epoch images, and upscales a photo; any error shown on the page or
//! in the browser's console fails it.
//!
//! Without Chromium, its driver or selenium this test fails and says what to install; set
//! `GENLAB_SKIP_BROWSER=1` to leave it out knowingly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn save_png(img: image::DynamicImage, p: &Path) {
    img.save_with_format(p, image::ImageFormat::Png)
        .expect("write PNG");
}

#[test]
fn studio_works_in_headless_browsers() {
    if std::env::var_os("GENLAB_SKIP_BROWSER").is_some() {
        eprintln!("GENLAB_SKIP_BROWSER is set: the browser test is left out");
        return;
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    assert!(
        Path::new(&chromium).exists()
            && Path::new(&driver).exists()
            && have("python3", &["-c", "import selenium"]),
        "the browser test needs {chromium}, {driver} and Python's selenium: \
         `apt-get install chromium chromium-driver && pip install selenium` (as .ci/run does), \
         or GENLAB_SKIP_BROWSER=1 to leave it out"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    for (family, out) in [
        ("vae", "runs/a-vae"),
        ("gan", "runs/b-gan"),
        ("cvae", "runs/c-cvae"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_genlab"))
            .args(["train", family, "--dry-run", "-q", "--out", out])
            .current_dir(d)
            .output()
            .expect("train");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // A digit-like upload and a small colour "photo".
    save_png(
        image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(84, 84, |x, y| {
            let on = (20..64).contains(&x) && (14..24).contains(&y)
                || (x + y / 3).abs_diff(60) < 5 && y > 14;
            image::Luma([if on { 255 } else { 0 }])
        })),
        &d.join("digit.png"),
    );
    save_png(
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(48, 40, |x, y| {
            image::Rgb([(x * 5) as u8, (y * 6) as u8, ((x * y) % 256) as u8])
        })),
        &d.join("photo.png"),
    );

    let mut server = Command::new(env!("CARGO_BIN_EXE_genlab"))
        .args(["serve", "runs", "--port", "0"])
        .current_dir(d)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the studio");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    // Chromium always; Firefox too where its WebDriver (geckodriver, not packaged by Debian:
    // `cargo install geckodriver`) is given in GECKODRIVER.
    let mut browsers = vec!["chromium"];
    let gecko = std::env::var("GECKODRIVER").ok();
    if gecko.as_ref().is_some_and(|g| Path::new(g).exists()) {
        browsers.push("firefox");
    } else {
        eprintln!("GECKODRIVER not set: the studio is driven in Chromium only");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/studio.py");
    let results: Vec<_> = browsers
        .iter()
        .map(|browser| {
            let shots = d.join(format!("shots-{browser}"));
            std::fs::create_dir(&shots).unwrap();
            let o = Command::new("python3")
                .arg(&script)
                .arg(&url)
                .args([
                    "--upload",
                    "digit.png",
                    "--photo",
                    "photo.png",
                    "--moves",
                    "30",
                ])
                .args([
                    "--invert-run",
                    "1",
                    "--class-run",
                    "2",
                    "--browser",
                    browser,
                ])
                .arg("--out")
                .arg(&shots)
                .env("CHROMIUM", &chromium)
                .env("CHROMEDRIVER", &driver)
                .env("GECKODRIVER", gecko.clone().unwrap_or_default())
                .current_dir(d)
                .output()
                .expect("run the browser script");
            (browser, shots, o)
        })
        .collect();
    let _ = server.kill();
    let _ = server.wait();
    for (browser, shots, o) in results {
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(
            o.status.success(),
            "the {browser} run failed:\n{err}\n{out}"
        );
        let timings: serde_json::Value =
            serde_json::from_str(out.lines().last().unwrap_or("")).expect("timings JSON");
        println!("studio in {browser}: {timings}");
        assert_eq!(timings["slider_moves"], 30);
        assert_eq!(timings["class_picker"], "ok");
        assert!(
            timings["inversion"]
                .as_str()
                .is_some_and(|s| s.contains("Adam steps"))
        );
        for shot in [
            "studio-explorer.png",
            "studio-yours.png",
            "studio-sr.png",
            "studio-invert.png",
        ] {
            assert!(shots.join(shot).is_file(), "{browser}: {shot}");
        }
    }
}
