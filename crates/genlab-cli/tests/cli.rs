//! The real `genlab` binary, end to end: a dry-run training, every command on its run folder, and
//! every kind of bad input a user can give (one-line error, non-zero exit, no panic, nothing
//! damaged).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn genlab(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_genlab"))
        .args(args)
        .current_dir(cwd)
        .env("GENLAB_DATA", cwd.join("no-such-data"))
        .env("XDG_CACHE_HOME", cwd.join("no-cache"))
        .output()
        .expect("run genlab")
}

/// `../shared/data/sr` beside the checkout (README, set-up): the photos and Set5/Set14 the
/// super-resolution tests read; a clear failure when the checkout has none beside it.
fn shared_sr() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sr");
    assert!(
        p.is_dir(),
        "{}: the super-resolution tests read ../shared/data beside the checkout (README, set-up)",
        p.display()
    );
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a clean failure: exit code 1, an `error:` line naming `needle`, no panic.
fn fails_with(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(line.contains(needle), "expected {needle:?} in {line:?}");
}

/// Asserts clap's usage error: exit code 2, an `error:` line naming `needle`, no panic.
fn usage_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(line.contains(needle), "expected {needle:?} in {line:?}");
}

fn dry_run(dir: &Path, family: &str, out: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["train", family, "--dry-run", "-q", "--out", out];
    args.extend(extra);
    let o = genlab(&args, dir);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    dir.join(out)
}

/// `--flush-denormals` (FTZ/DAZ on every computing thread) is accepted before or after the
/// command, and a short run's numbers are those of the run without it (subnormals are too rare
/// early in training to matter; BENCHMARKS.md, issue 22, has README's whole run).
#[test]
fn flush_denormals_is_a_global_flag_that_keeps_results() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let plain = dry_run(d, "vae", "runs/a", &[]);
    let o = genlab(
        &[
            "--flush-denormals",
            "train",
            "vae",
            "--dry-run",
            "-q",
            "--out",
            "runs/b",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = genlab(
        &[
            "train",
            "vae",
            "--dry-run",
            "-q",
            "--out",
            "runs/c",
            "--flush-denormals",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let loss = |dir: &Path| {
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics");
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        (
            v["train_loss"].as_f64().unwrap(),
            v["test"]["loss"].as_f64().unwrap(),
        )
    };
    assert_eq!(loss(&plain), loss(&d.join("runs/b")));
    assert_eq!(loss(&plain), loss(&d.join("runs/c")));
}

#[test]
fn vae_dry_run_then_every_command() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let run = dry_run(d, "vae", "runs/v", &[]);
    for f in [
        "config.toml",
        "weights.safetensors",
        "state.json",
        "metrics.jsonl",
        "loss.png",
        "samples/epoch-001.png",
        "reconstructions/epoch-001.png",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let ok = |args: &[&str]| {
        let o = genlab(args, d);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(&["sample", "runs/v", "-n", "9", "-o", "s.png"]);
    let img = image::open(d.join("s.png")).expect("sample grid decodes");
    assert_eq!(img.width(), 3 * 30 + 2);
    ok(&["reconstruct", "runs/v", "-n", "4", "-o", "r.png"]);
    ok(&["interpolate", "runs/v", "--steps", "5", "-o", "i.png"]);
    let ev = ok(&["eval", "runs/v", "--json"]);
    assert!(ev.contains("\"neg_elbo\""), "{ev}");
    // Encode a real PNG (a reconstruction grid, converted to 28x28 grey) and decode it back.
    let enc = ok(&["encode", "runs/v", "r.png", "-o", "c.glz"]);
    assert!(enc.contains("92 bytes (20 latent values)"), "{enc}");
    ok(&["decode", "runs/v", "c.glz", "-o", "back.png"]);
    assert_eq!(
        image::open(d.join("back.png")).expect("decoded").width(),
        28
    );
    // Resume a finished run with more epochs.
    let o = genlab(&["train", "--resume", "runs/v", "--epochs", "2", "-q"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics");
    assert_eq!(lines.lines().count(), 2);
}

/// `--shards N`: accepted by the families without batch norm, written to the config, changeable
/// on resume; refused with a one-line error elsewhere (the training itself is checked against
/// the unsharded run in `genlab`'s `train_loop` tests).
#[test]
fn shards_flag_where_it_applies_and_clear_errors_elsewhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let run = dry_run(d, "vae", "runs/v", &["--shards", "3"]);
    let cfg = std::fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(cfg.contains("shards = 3"), "{cfg}");
    let o = genlab(
        &[
            "train", "--resume", "runs/v", "--epochs", "2", "--shards", "2", "-q",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(cfg.contains("shards = 2"), "{cfg}");
    dry_run(d, "ae", "runs/a", &["--arch", "conv", "--shards", "2"]);
    for (args, needle) in [
        (
            &["train", "gan", "--dry-run", "--shards", "2", "-o", "g"][..],
            "train.shards",
        ),
        (
            &["train", "vae-gan", "--dry-run", "--shards", "2", "-o", "vg"],
            "batch norm",
        ),
        (
            &["train", "vae", "--shards", "0", "-o", "z"],
            "train.shards",
        ),
        (
            &[
                "train",
                "vae",
                "--batch-size",
                "8",
                "--shards",
                "9",
                "-o",
                "n",
            ],
            "at most train.batch_size (8)",
        ),
        (
            &[
                "train", "--resume", "runs/v", "--epochs", "3", "--shards", "0",
            ],
            "train.shards",
        ),
    ] {
        fails_with(&genlab(args, d), needle);
    }
    for out in ["g", "vg", "z", "n"] {
        assert!(!d.join(out).exists(), "{out} was created");
    }
    usage_error(
        &genlab(&["train", "sr", "--shards", "2"], d),
        "unexpected argument '--shards'",
    );
}

#[test]
fn conv_autoencoder_dry_run_and_what_it_cannot_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    dry_run(d, "ae", "runs/a", &["--arch", "conv"]);
    let o = genlab(&["reconstruct", "runs/a", "-o", "r.png"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    fails_with(&genlab(&["sample", "runs/a"], d), "autoencoder");
    fails_with(&genlab(&["interpolate", "runs/a"], d), "autoencoder");
}

/// DCGAN, VAE-GAN and the feature classifier: dry runs, every command that applies, `eval` with
/// the shipped classifier and on a samples folder, and the bad inputs of the GAN issue.
#[test]
fn adversarial_families_and_generative_eval() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let ok = |args: &[&str]| {
        let o = genlab(args, d);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let gan = dry_run(
        d,
        "gan",
        "runs/g",
        &["--loss", "hinge", "--label-smoothing", "0.1"],
    );
    assert!(gan.join("samples/epoch-001.png").is_file());
    let log = std::fs::read_to_string(gan.join("metrics.jsonl")).expect("metrics");
    assert!(
        log.contains("\"d_real\"") && log.contains("\"d_fake\""),
        "{log}"
    );
    ok(&["sample", "runs/g", "-n", "4", "-o", "s.png"]);
    ok(&["interpolate", "runs/g", "--steps", "4", "-o", "i.png"]);
    assert_eq!(
        image::open(d.join("i.png")).expect("row").width(),
        4 * 30 + 2
    );
    // 130 samples: a Fréchet distance in the classifier's 128 features needs at least 129.
    let ev = ok(&["eval", "runs/g", "-n", "130", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ev).expect("json");
    assert!(v["samples"]["fd"].as_f64().expect("fd") > 0.0, "{ev}");
    assert_eq!(v["samples"]["generated"], 130);
    assert_eq!(v["samples"]["features"], "genlab-classifier/mnist");
    // What a GAN cannot do.
    fails_with(&genlab(&["reconstruct", "runs/g"], d), "no encoder");
    fails_with(&genlab(&["eval", "runs/g", "--nll"], d), "no likelihood");
    usage_error(
        &genlab(&["train", "gan", "--beta", "2"], d),
        "unexpected argument '--beta'",
    );
    fails_with(
        &genlab(
            &["train", "gan", "--label-smoothing", "0.9", "--dry-run"],
            d,
        ),
        "label_smoothing",
    );

    // VAE-GAN: reconstructs, samples, and has an NLL.
    dry_run(d, "vae-gan", "runs/vg", &[]);
    dry_run(
        d,
        "vae-gan",
        "runs/vg-joint",
        &["--recipe", "joint", "--recon", "pixels"],
    );
    fails_with(
        &genlab(&["train", "vae-gan", "--recon-layer", "3", "--dry-run"], d),
        "model.recon_layer",
    );
    ok(&["reconstruct", "runs/vg", "-n", "4", "-o", "r.png"]);
    let ev = ok(&[
        "eval",
        "runs/vg",
        "-n",
        "130",
        "--nll",
        "--k",
        "4",
        "--max-images",
        "130",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&ev).expect("json");
    assert!(v["nll"]["nll"].as_f64().expect("nll") > 0.0, "{ev}");
    assert!(v["reconstruction"]["psnr"].as_f64().is_some(), "{ev}");

    // A classifier run evaluates to an accuracy and generates nothing.
    dry_run(d, "classifier", "runs/c", &[]);
    let ev = ok(&["eval", "runs/c", "--json"]);
    assert!(ev.contains("\"test_accuracy\""), "{ev}");
    fails_with(&genlab(&["sample", "runs/c"], d), "classifier");

    // --samples: a folder of 28x28 grey PNGs (some saved as RGB with equal channels) is scored;
    // wrong sizes, colour, empty folders and a missing --dataset are clear errors.
    let good = d.join("good");
    std::fs::create_dir_all(&good).expect("mkdir");
    // 130: a Fréchet distance in the classifier's 128 features needs at least 129 images.
    for i in 0..130u8 {
        let img = image::GrayImage::from_fn(28, 28, |x, y| {
            image::Luma([(x as u8 * 9) ^ (y as u8).wrapping_mul(i)])
        });
        if i % 2 == 0 {
            img.save(good.join(format!("{i}.png"))).expect("png");
        } else {
            image::DynamicImage::ImageLuma8(img)
                .to_rgb8()
                .save(good.join(format!("{i}.png")))
                .expect("png");
        }
    }
    let ev = ok(&[
        "eval",
        "--samples",
        "good",
        "--dataset",
        "mnist-10k",
        "--json",
    ]);
    assert!(ev.contains("\"precision\""), "{ev}");
    let big = d.join("big");
    std::fs::create_dir_all(&big).expect("mkdir");
    image::GrayImage::new(32, 32)
        .save(big.join("a.png"))
        .expect("png");
    fails_with(
        &genlab(&["eval", "--samples", "big", "--dataset", "mnist-10k"], d),
        "expected 28x28",
    );
    let colour = d.join("colour");
    std::fs::create_dir_all(&colour).expect("mkdir");
    image::RgbImage::from_pixel(28, 28, image::Rgb([200, 10, 10]))
        .save(colour.join("a.png"))
        .expect("png");
    fails_with(
        &genlab(
            &["eval", "--samples", "colour", "--dataset", "mnist-10k"],
            d,
        ),
        "colour image",
    );
    std::fs::create_dir_all(d.join("empty")).expect("mkdir");
    fails_with(
        &genlab(&["eval", "--samples", "empty", "--dataset", "mnist-10k"], d),
        "no image files",
    );
    fails_with(&genlab(&["eval", "--samples", "good"], d), "--dataset");
    fails_with(
        &genlab(
            &[
                "eval",
                "--samples",
                "good",
                "--dataset",
                "mnist-10k",
                "--classifier",
                "runs/g",
            ],
            d,
        ),
        "not a classifier",
    );
}

#[test]
fn bad_datasets_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    // Wrong magic (an HTML error page saved as the data file).
    let data = d.join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(
        data.join("train-images-idx3-ubyte"),
        b"<html>not found</html>",
    )
    .expect("write");
    for f in [
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(data.join(f), b"").expect("write");
    }
    let o = genlab(
        &[
            "train",
            "vae",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            "data",
            "--dry-run",
        ],
        d,
    );
    fails_with(&o, "expected IDX magic 0x00000803, found 0x3c68746d");
    // Truncated: a valid header promising more images than the file holds.
    let mut b = vec![0u8, 0, 8, 3];
    for v in [10u32, 28, 28] {
        b.extend(v.to_be_bytes());
    }
    b.extend(vec![0u8; 100]);
    std::fs::write(data.join("train-images-idx3-ubyte"), &b).expect("write");
    let o = genlab(
        &[
            "train",
            "vae",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            "data",
            "--dry-run",
        ],
        d,
    );
    fails_with(&o, "truncated");
    // Missing files entirely (mnist is looked for, not found).
    let o = genlab(
        &[
            "train",
            "vae",
            "--dataset",
            "mnist",
            "--data-dir",
            "empty",
            "--dry-run",
        ],
        d,
    );
    fails_with(&o, "genlab data fetch mnist");
    // An image folder with no images, and one with a non-image file.
    std::fs::create_dir_all(d.join("imgs")).expect("mkdir");
    fails_with(
        &genlab(&["train", "vae", "--dataset", "imgs", "--dry-run"], d),
        "no image files",
    );
    std::fs::write(d.join("imgs/readme.txt"), "hello").expect("write");
    fails_with(
        &genlab(&["train", "vae", "--dataset", "imgs", "--dry-run"], d),
        "readme.txt",
    );
    // Not a dataset name nor a folder.
    fails_with(
        &genlab(&["train", "vae", "--dataset", "nope", "--dry-run"], d),
        "dataset = nope",
    );
}

#[test]
fn bad_flags_and_presets_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    fails_with(
        &genlab(&["train", "vae", "--batch-size", "0"], d),
        "train.batch_size = 0",
    );
    fails_with(&genlab(&["train", "vae", "--lr=-1"], d), "train.lr = -1");
    fails_with(
        &genlab(&["train", "vae", "--latent", "0", "--dry-run"], d),
        "model.latent = 0",
    );
    fails_with(
        &genlab(&["train", "vae", "--device", "wgpu"], d),
        "--device wgpu",
    );
    std::fs::write(d.join("p.toml"), "[model]\nkind = \"vae\"\nlatnet = 3\n").expect("write");
    fails_with(
        &genlab(&["train", "vae", "--preset", "p.toml"], d),
        "p.toml: line 3",
    );
    fails_with(
        &genlab(&["train", "vae", "--preset", "nonexistent"], d),
        "preset = nonexistent",
    );
    // Unknown flag: clap's usage error, exit 2.
    let o = genlab(&["train", "vae", "--epohcs", "3"], d);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("panicked"));
}

/// Each `genlab train` family has only its own flags: one that does not apply does not exist
/// there (clap's usage error, exit 2), and `--resume` names no family.
#[test]
fn train_flags_exist_only_for_their_family() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let help = |args: &[&str]| {
        let o = genlab(args, d);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let sr = help(&["train", "sr", "--help"]);
    assert!(sr.contains("--scale") && sr.contains("--init-from"), "{sr}");
    for flag in ["--beta", "--preset", "--dataset", "--latent", "--arch"] {
        assert!(!sr.contains(flag), "`train sr --help` lists {flag}: {sr}");
    }
    let vae = help(&["train", "vae", "--help"]);
    assert!(vae.contains("--beta") && vae.contains("--preset"), "{vae}");
    for flag in ["--scale", "--images", "--loss", "--recon", "--gamma"] {
        assert!(
            !vae.contains(flag),
            "`train vae --help` lists {flag}: {vae}"
        );
    }
    let gan = help(&["train", "dcgan", "--help"]);
    assert!(
        gan.contains("--label-smoothing") && !gan.contains("--beta"),
        "{gan}"
    );
    for (args, flag) in [
        (&["train", "classifier", "--latent", "3"][..], "--latent"),
        (&["train", "ae", "--beta", "2"], "--beta"),
        (&["train", "gan", "--arch", "conv"], "--arch"),
        (&["train", "vae", "--gamma", "1"], "--gamma"),
        (&["train", "sr", "--dataset", "mnist"], "--dataset"),
        (&["train", "vae", "--resume", "runs/v"], "--resume"),
    ] {
        usage_error(&genlab(args, d), &format!("unexpected argument '{flag}'"));
    }
    usage_error(
        &genlab(&["train", "--resume", "runs/v", "vae"], d),
        "cannot be used with '--resume",
    );
    usage_error(&genlab(&["train", "--epochs", "3"], d), "required");
}

#[test]
fn bad_checkpoints_are_clear_errors_and_nothing_is_damaged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    dry_run(d, "vae", "runs/v", &[]);
    dry_run(d, "ae", "runs/a", &[]);
    fails_with(
        &genlab(&["sample", "runs/missing"], d),
        "run folder does not exist",
    );
    // Weights from another model.
    let v = d.join("runs/v/weights.safetensors");
    let good = std::fs::read(&v).expect("read");
    std::fs::copy(d.join("runs/a/weights.safetensors"), &v).expect("copy");
    fails_with(
        &genlab(&["sample", "runs/v", "-o", "x.png"], d),
        "weights.safetensors",
    );
    // Truncated weights.
    std::fs::write(&v, &good[..good.len() / 2]).expect("truncate");
    fails_with(
        &genlab(&["sample", "runs/v", "-o", "x.png"], d),
        "weights.safetensors",
    );
    assert!(!d.join("x.png").exists());
    std::fs::write(&v, &good).expect("restore");
    // Output in a missing folder: refused before any work.
    fails_with(
        &genlab(&["sample", "runs/v", "-o", "nowhere/x.png"], d),
        "does not exist",
    );
    // Training into an existing run folder without --resume leaves it untouched.
    let before = std::fs::read(d.join("runs/v/state.json")).expect("read");
    fails_with(
        &genlab(&["train", "vae", "--dry-run", "--out", "runs/v"], d),
        "--resume",
    );
    assert_eq!(
        std::fs::read(d.join("runs/v/state.json")).expect("read"),
        before
    );
    // A corrupt code file.
    std::fs::write(d.join("bad.glz"), b"GENLABZ1\x05\0\0\0abc").expect("write");
    fails_with(&genlab(&["decode", "runs/v", "bad.glz"], d), "bad.glz");
    // A corrupt image to encode.
    std::fs::write(d.join("bad.png"), b"\x89PNG\r\n\x1a\nbroken").expect("write");
    fails_with(&genlab(&["encode", "runs/v", "bad.png"], d), "bad.png");
}

#[test]
fn image_folder_trains_as_rgb_32x32() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let imgs = d.join("photos");
    std::fs::create_dir_all(&imgs).expect("mkdir");
    for i in 0..12u8 {
        let img = image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([i * 20, x as u8 * 6, y as u8 * 8])
        });
        img.save_with_format(imgs.join(format!("p{i:02}.png")), image::ImageFormat::Png)
            .expect("save");
    }
    dry_run(
        d,
        "vae",
        "runs/f",
        &["--dataset", "photos", "--arch", "conv"],
    );
    let cfg = std::fs::read_to_string(d.join("runs/f/config.toml")).expect("config");
    assert!(
        cfg.contains("image = [\n    3,\n    32,\n    32,\n]")
            || cfg.contains("image = [3, 32, 32]"),
        "{cfg}"
    );
    let o = genlab(&["sample", "runs/f", "-n", "4", "-o", "s.png"], d);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The conditional families: trained on labelled data (mnist-10k's digits, or a folder's
/// sub-folders), a class drawn by name or index, the per-class sheet, eval's label accuracy and
/// per-class scores; an unlabelled dataset, an unknown class and `--class` on an unconditional
/// run are one-line errors.
#[test]
fn conditional_families_draw_the_class_asked_for() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let ok = |args: &[&str]| {
        let o = genlab(args, d);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let size = |p: &str| {
        let img = image::open(d.join(p)).expect("image decodes");
        (img.width(), img.height())
    };
    // The cGAN's concatenation discriminator: recorded in the config, its run samples; the
    // flag is the cGAN's only.
    let cc = dry_run(d, "cgan", "runs/cc", &["--discriminator", "concat"]);
    let cfg = std::fs::read_to_string(cc.join("config.toml")).expect("config");
    assert!(cfg.contains("discriminator = \"concat\""), "{cfg}");
    ok(&[
        "sample", "runs/cc", "--class", "2", "-n", "4", "-o", "cc.png",
    ]);
    usage_error(
        &genlab(&["train", "cvae", "--discriminator", "concat"], d),
        "--discriminator",
    );
    usage_error(
        &genlab(&["train", "cgan", "--discriminator", "mixed"], d),
        "mixed",
    );
    for (family, run) in [("cvae", "runs/cv"), ("cgan", "runs/cg")] {
        let dir = dry_run(d, family, run, &[]);
        // The epoch's sheet: one row per digit, 8 columns of fixed noise (28 px + 2 px borders).
        assert_eq!(
            size(&format!("{run}/samples/epoch-001.png")),
            (8 * 30 + 2, 10 * 30 + 2)
        );
        let cfg = std::fs::read_to_string(dir.join("config.toml")).expect("config");
        assert!(cfg.contains("classes") && cfg.contains("\"9\""), "{cfg}");
        ok(&["sample", run, "--class", "7", "-n", "4", "-o", "seven.png"]);
        assert_eq!(size("seven.png"), (2 * 30 + 2, 2 * 30 + 2));
        // Without --class: a row per class, n / classes columns rounded up.
        ok(&["sample", run, "-n", "15", "-o", "sheet.png"]);
        assert_eq!(size("sheet.png"), (2 * 30 + 2, 10 * 30 + 2));
        // Interpolation between two noise vectors, within a class or in every class.
        ok(&[
            "interpolate",
            run,
            "--steps",
            "5",
            "--class",
            "2",
            "-o",
            "line.png",
        ]);
        assert_eq!(size("line.png"), (5 * 30 + 2, 30 + 2));
        ok(&["interpolate", run, "--steps", "5", "-o", "lines.png"]);
        assert_eq!(size("lines.png"), (5 * 30 + 2, 10 * 30 + 2));
        // -o DIR/: each image its own PNG at the model's size, named by class.
        let single = format!("{family}-single/");
        ok(&["sample", run, "--class", "3", "-n", "3", "-o", &single]);
        for i in 1..=3 {
            assert_eq!(size(&format!("{single}3/000{i}.png")), (28, 28));
        }
        ok(&["sample", run, "-n", "10", "-o", &format!("{family}-sheet/")]);
        assert_eq!(size(&format!("{family}-sheet/9/0001.png")), (28, 28));
        fails_with(
            &genlab(&["sample", run, "--class", "sneaker", "-o", "x.png"], d),
            "--class sneaker",
        );
        fails_with(
            &genlab(&["sample", run, "--class", "10", "-o", "x.png"], d),
            "an index 0..9",
        );
        assert!(!d.join("x.png").exists());
        let ev: serde_json::Value =
            serde_json::from_str(&ok(&["eval", run, "-n", "200", "--json"])).expect("json");
        let c = &ev["conditional"];
        let acc = c["label_accuracy"].as_f64().expect("label accuracy");
        assert!((0.0..=1.0).contains(&acc), "{ev}");
        let per = c["per_class"].as_array().expect("per class");
        assert_eq!(per.len(), 10);
        assert_eq!(per[3]["class"], "3");
        assert_eq!(per[3]["generated"], 20);
        assert!(per[3]["precision"].as_f64().is_some(), "{ev}");
        assert!(ev["samples"]["fd"].as_f64().is_some(), "{ev}");
        if family == "cvae" {
            assert!(ev["reconstruction"]["neg_elbo"].as_f64().expect("-ELBO") > 0.0);
            let nll: serde_json::Value = serde_json::from_str(&ok(&[
                "eval",
                run,
                "-n",
                "200",
                "--nll",
                "--k",
                "4",
                "--max-images",
                "200",
                "--json",
            ]))
            .expect("json");
            assert!(nll["nll"]["nll"].as_f64().expect("NLL") > 0.0, "{nll}");
            ok(&["reconstruct", run, "-n", "4", "-o", "recon.png"]);
            assert_eq!(size("recon.png"), (2 * 30 + 2, 4 * 30 + 2));
            // encode/decode: the class is named, kept in the code, and can be swapped.
            let o = genlab(&["encode", run, "recon.png", "-o", "c.glz"], d);
            fails_with(&o, "--class");
            assert!(!d.join("c.glz").exists());
            ok(&["encode", run, "recon.png", "--class", "4", "-o", "four.glz"]);
            let code = std::fs::read(d.join("four.glz")).expect("code");
            assert_eq!(&code[..8], b"GENLABZ2");
            assert_eq!(code[12..16], 4u32.to_le_bytes());
            ok(&["decode", run, "four.glz", "-o", "four.png"]);
            ok(&["decode", run, "four.glz", "--class", "9", "-o", "nine.png"]);
            assert_eq!(size("four.png"), (28, 28));
            let (a, b) = (
                image::open(d.join("four.png")),
                image::open(d.join("nine.png")),
            );
            assert_ne!(a.expect("png").to_luma8(), b.expect("png").to_luma8());
            // The encoded style in every class: a row of ten.
            ok(&["decode", run, "four.glz", "--every-class", "-o", "row.png"]);
            assert_eq!(size("row.png"), (10 * 30 + 2, 30 + 2));
        } else {
            fails_with(
                &genlab(&["reconstruct", run, "-o", "r.png"], d),
                "no encoder",
            );
        }
    }
    // The conditional VAE-GAN is a cvae preset: its epochs record the adversarial terms, and
    // it samples, evaluates and re-renders an encoded style in every class as the cVAE does.
    let cvg = dry_run(d, "cvae", "runs/cvg", &["--preset", "mnist-cvae-gan"]);
    let cfg = std::fs::read_to_string(cvg.join("config.toml")).expect("config");
    assert!(cfg.contains("[model.adversarial]"), "{cfg}");
    let metrics = std::fs::read_to_string(cvg.join("metrics.jsonl")).expect("metrics");
    let rec: serde_json::Value =
        serde_json::from_str(metrics.lines().next().expect("a record")).expect("json");
    assert!(rec["adversarial"]["d_loss"].as_f64().is_some(), "{rec}");
    ok(&[
        "sample",
        "runs/cvg",
        "--class",
        "7",
        "-n",
        "4",
        "-o",
        "cvg-seven.png",
    ]);
    let ev: serde_json::Value =
        serde_json::from_str(&ok(&["eval", "runs/cvg", "-n", "200", "--json"])).expect("json");
    assert!(
        ev["conditional"]["label_accuracy"].as_f64().is_some(),
        "{ev}"
    );
    ok(&[
        "encode",
        "runs/cvg",
        "recon.png",
        "--class",
        "4",
        "-o",
        "cvg.glz",
    ]);
    ok(&[
        "decode",
        "runs/cvg",
        "cvg.glz",
        "--every-class",
        "-o",
        "cvg-row.png",
    ]);
    assert_eq!(size("cvg-row.png"), (10 * 30 + 2, 30 + 2));
    // Any tool's samples in CLASS/ sub-folders: eval --samples reports their label accuracy.
    ok(&["sample", "runs/cg", "-n", "200", "-o", "fakes/"]);
    let ev: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--samples",
        "fakes",
        "--dataset",
        "mnist-10k",
        "--json",
    ]))
    .expect("json");
    assert_eq!(ev["conditional"]["per_class"][7]["generated"], 20, "{ev}");
    std::fs::create_dir_all(d.join("fakes/zebra")).expect("mkdir");
    std::fs::copy(d.join("fakes/3/0001.png"), d.join("fakes/zebra/0001.png")).expect("copy");
    fails_with(
        &genlab(&["eval", "--samples", "fakes", "--dataset", "mnist-10k"], d),
        "\"zebra\" is not a class",
    );
    // compare: the conditional families on request, with a label accuracy column.
    let table = ok(&[
        "compare",
        "--dry-run",
        "--families",
        "dcgan,cgan",
        "--out",
        "cmp",
    ]);
    assert!(table.contains("label accuracy"), "{table}");
    let csv = std::fs::read_to_string(d.join("cmp/compare.csv")).expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",label_accuracy"), "{csv}");
    assert!(
        lines[1].starts_with("dcgan,") && lines[1].ends_with(','),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("cgan,") && !lines[2].ends_with(','),
        "{csv}"
    );
    // --class is a conditional run's flag; -o DIR/ is every generator's.
    dry_run(d, "vae", "runs/v", &[]);
    ok(&["sample", "runs/v", "-n", "2", "-o", "vae-single/"]);
    fails_with(
        &genlab(&["decode", "runs/v", "four.glz", "-o", "v4.png"], d),
        "conditional VAE's code",
    );
    fails_with(
        &genlab(
            &[
                "encode", "runs/v", "four.png", "--class", "4", "-o", "v.glz",
            ],
            d,
        ),
        "--class",
    );
    assert_eq!(size("vae-single/sample-0002.png"), (28, 28));
    assert!(!d.join("vae-single/sample-0003.png").exists());
    fails_with(
        &genlab(&["sample", "runs/v", "--class", "3", "-o", "v.png"], d),
        "--class",
    );
    // A folder whose images sit in sub-folders: those are the classes, by name.
    let photos = d.join("photos");
    for (k, class) in ["cat", "dog"].iter().enumerate() {
        std::fs::create_dir_all(photos.join(class)).expect("mkdir");
        for i in 0..6u8 {
            let img = image::RgbImage::from_fn(36, 36, |x, y| {
                image::Rgb([i * 30, (x * 3) as u8 + k as u8 * 90, y as u8 * 6])
            });
            img.save(photos.join(class).join(format!("p{i}.png")))
                .expect("save");
        }
    }
    dry_run(d, "cgan", "runs/pets", &["--dataset", "photos"]);
    ok(&[
        "sample",
        "runs/pets",
        "--class",
        "dog",
        "-n",
        "1",
        "-o",
        "dog.png",
    ]);
    assert_eq!(size("dog.png"), (32 + 2 * 2, 32 + 2 * 2));
    // The same images with no sub-folders have no labels: refused before a run folder exists.
    let flat = d.join("flat");
    std::fs::create_dir_all(&flat).expect("mkdir");
    for entry in std::fs::read_dir(photos.join("cat")).expect("ls") {
        let p = entry.expect("entry").path();
        std::fs::copy(&p, flat.join(p.file_name().expect("name"))).expect("copy");
    }
    let o = genlab(
        &[
            "train",
            "cvae",
            "--dataset",
            "flat",
            "--arch",
            "conv",
            "--dry-run",
            "--out",
            "runs/flat",
        ],
        d,
    );
    fails_with(&o, "a labelled dataset");
    assert!(!d.join("runs/flat").exists());
}

/// Packs: training from a folder packs it into the cache once and reuses it; `data pack` writes
/// one where asked (never over an input or a file genlab did not make); `--dataset PACK` trains
/// from it; `data check` finds a damaged one; `--image` sizes folder images and only those.
#[test]
fn image_folders_are_packed_once_and_packs_train() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let imgs = d.join("photos");
    for (k, class) in ["cat", "dog"].iter().enumerate() {
        std::fs::create_dir_all(imgs.join(class)).expect("mkdir");
        for i in 0..8u8 {
            image::RgbImage::from_fn(24, 20, |x, y| {
                image::Rgb([i * 20, x as u8 * 6 + k as u8 * 50, y as u8 * 8])
            })
            .save(imgs.join(class).join(format!("p{i}.jpg")))
            .expect("save");
        }
    }
    let packs = || -> Vec<PathBuf> {
        std::fs::read_dir(d.join("no-cache/genlab/packs"))
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    // A GAN on the folder at 16x16, dry run, into `out`.
    let train_photos = |out: &str| {
        genlab(
            &[
                "train",
                "gan",
                "--dataset",
                "photos",
                "--image",
                "3,16,16",
                "--dry-run",
                "-q",
                "--out",
                out,
            ],
            d,
        )
    };
    let o = train_photos("r1");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("packing 16 images"), "{}", stderr(&o));
    assert_eq!(packs().len(), 1, "one pack in the cache");
    let cfg = std::fs::read_to_string(d.join("r1/config.toml")).expect("config");
    assert!(
        cfg.contains("image = [\n    3,\n    16,\n    16,\n]")
            || cfg.contains("image = [3, 16, 16]"),
        "{cfg}"
    );
    // Unchanged folder: reused, nothing said.
    let o = train_photos("r2");
    assert!(
        o.status.success() && !stderr(&o).contains("packing"),
        "{}",
        stderr(&o)
    );
    // Evaluating the run reads the same pack.
    let o = genlab(&["eval", "r2", "-n", "8"], d);
    assert!(
        !stderr(&o).contains("packing") && !stderr(&o).contains("panicked"),
        "{}",
        stderr(&o)
    );
    // A changed folder is packed again, into the same cache file.
    image::RgbImage::from_pixel(9, 9, image::Rgb([1, 2, 3]))
        .save(imgs.join("cat/new.png"))
        .expect("save");
    let o = train_photos("r3");
    assert!(stderr(&o).contains("packing 17 images"), "{}", stderr(&o));
    assert_eq!(packs().len(), 1);

    // An explicit pack, its default name beside the folder, and training from it.
    let o = genlab(&["data", "pack", "photos", "--image", "1,8,8", "-q"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 classes: cat, dog"), "{}", stderr(&o));
    let pack = d.join("photos.glpack");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "photos.glpack");
    let o = genlab(&["data", "check", "photos.glpack"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ok: 16 train + 1 test images of [1, 8, 8]")
    );
    let run = dry_run(d, "vae", "r4", &["--dataset", "photos.glpack"]);
    let cfg = std::fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(cfg.contains("photos.glpack"), "{cfg}");
    let o = genlab(&["sample", "r4", "-n", "4", "-o", "s.png"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    // Packing again replaces genlab's own default-named pack...
    let o = genlab(&["data", "pack", "photos", "--image", "1,8,8", "-q"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    // ...but never a file genlab did not make, an input, or a file inside the folder.
    std::fs::write(d.join("other.glpack"), "mine").expect("write");
    fails_with(
        &genlab(
            &["data", "pack", "photos", "-q", "-o", "photos/cat/p0.jpg"],
            d,
        ),
        "p0.jpg",
    );
    fails_with(
        &genlab(
            &["data", "pack", "photos", "-q", "-o", "photos/x.glpack"],
            d,
        ),
        "x.glpack",
    );
    std::fs::rename(d.join("other.glpack"), d.join("photos2.glpack")).expect("mv");
    std::fs::create_dir(d.join("photos2")).expect("mkdir");
    std::fs::copy(imgs.join("cat/p0.jpg"), d.join("photos2/a.jpg")).expect("cp");
    fails_with(
        &genlab(&["data", "pack", "photos2", "-q"], d),
        "photos2.glpack",
    );
    assert_eq!(
        std::fs::read(d.join("photos2.glpack")).expect("kept"),
        b"mine"
    );

    // Damage: truncated is an error when training, a flipped pixel when checking.
    let bytes = std::fs::read(&pack).expect("read");
    std::fs::write(d.join("cut.glpack"), &bytes[..bytes.len() - 3]).expect("write");
    fails_with(
        &genlab(
            &[
                "train",
                "vae",
                "--dataset",
                "cut.glpack",
                "--dry-run",
                "-q",
                "--out",
                "r5",
            ],
            d,
        ),
        "truncated",
    );
    let mut flipped = bytes.clone();
    let i = flipped.len() - 40;
    flipped[i] ^= 1;
    std::fs::write(d.join("flip.glpack"), &flipped).expect("write");
    fails_with(&genlab(&["data", "check", "flip.glpack"], d), "damaged");
    // Not a pack at all, and --image where the dataset has its own size.
    std::fs::write(d.join("notes.txt"), "hello").expect("write");
    fails_with(
        &genlab(
            &["train", "vae", "--dataset", "notes.txt", "--dry-run", "-q"],
            d,
        ),
        "not one",
    );
    fails_with(
        &genlab(
            &["train", "vae", "--image", "3,16,16", "--dry-run", "-q"],
            d,
        ),
        "--image",
    );
    usage_error(
        &genlab(&["data", "pack", "photos", "--image", "2,8,8"], d),
        "C = 1 or 3",
    );
    // The 64x64 folder preset wants a dataset.
    fails_with(
        &genlab(
            &[
                "train",
                "gan",
                "--preset",
                "folder-dcgan-64",
                "--dry-run",
                "-q",
            ],
            d,
        ),
        "--dataset FOLDER",
    );
}

/// `genlab data fetch` against a local HTTP server: the real MNIST test files (the copies embedded
/// in the repo, which match the published SHA-256s) are downloaded and verified; a train-images
/// file of the right size but wrong content is refused by SHA-256 and never appears on disk.
#[test]
fn data_fetch_verifies_against_published_checksums() {
    use std::collections::HashMap;
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("../genlab/data");
    let mut files = HashMap::new();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        files.insert(
            f.to_string(),
            std::fs::read(embedded.join(f)).expect("embedded file"),
        );
    }
    files.insert("train-images-idx3-ubyte.gz".into(), vec![0u8; 9_912_422]);
    let mirror = genlab::data::fetch::test_server::serve(files);

    let o = genlab(
        &[
            "data",
            "fetch",
            "mnist",
            "--data-dir",
            "dl",
            "--mirror",
            &mirror,
            "-q",
        ],
        d,
    );
    fails_with(&o, "SHA-256 mismatch for train-images-idx3-ubyte.gz");
    assert!(
        stderr(&o).contains("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609")
    );
    let mut names: Vec<String> = std::fs::read_dir(d.join("dl/mnist"))
        .expect("download folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"],
        "only verified files, no partial downloads"
    );
    for f in &names {
        let got = std::fs::read(d.join("dl/mnist").join(f)).expect("read");
        assert_eq!(
            got,
            std::fs::read(embedded.join(f)).expect("embedded"),
            "{f}"
        );
    }

    // A second run finds the verified test files in place and fails again on the bad one.
    let o = genlab(
        &[
            "data",
            "fetch",
            "mnist",
            "--data-dir",
            "dl",
            "--mirror",
            &mirror,
        ],
        d,
    );
    fails_with(&o, "train-images-idx3-ubyte.gz");
    assert!(stderr(&o).contains("t10k-images-idx3-ubyte.gz: already present, SHA-256 ok"));

    fails_with(&genlab(&["data", "fetch", "imagenet"], d), "imagenet");
    fails_with(
        &genlab(
            &[
                "data",
                "fetch",
                "mnist",
                "--mirror",
                "http://127.0.0.1:9/",
                "--data-dir",
                "x",
            ],
            d,
        ),
        "127.0.0.1:9",
    );
}

/// `genlab bench` times a workload and writes its JSON report; bad values are one-line errors.
#[test]
fn bench_reports_images_per_second() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let o = genlab(
        &[
            "bench",
            "-w",
            "mlp-vae",
            "--batch-size",
            "8",
            "--windows",
            "2",
            "--window-seconds",
            "0.05",
            "--warmup",
            "1",
            "--json",
            "b.json",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("b.json")).expect("json")).expect("parse");
    let w = &doc["workloads"][0];
    assert_eq!(w["workload"], "mlp-vae");
    assert!(w["median_images_per_s"].as_f64().expect("number") > 0.0);
    assert_eq!(w["windows"].as_array().expect("windows").len(), 2);
    fails_with(&genlab(&["bench", "-w", "resnet"], d), "resnet");
    fails_with(
        &genlab(&["bench", "--window-seconds", "0"], d),
        "--window-seconds 0",
    );
    fails_with(
        &genlab(&["bench", "--json", "no/such/dir/b.json"], d),
        "no/such/dir",
    );
}

/// Super-resolution end to end: a dry-run training on the T91 photos, `eval` on its run and on
/// the shipped model, `upscale` of grey / RGB / RGBA / 16-bit / palette images and folders, and
/// every bad input the issue lists.
#[test]
fn super_resolution_train_eval_upscale_and_bad_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let shared = shared_sr();
    let train = shared.join("train");
    let set5 = shared.join("Set5/x2");
    let (train, set5) = (train.to_str().expect("utf8"), set5.to_str().expect("utf8"));

    // Training: a dry run writes a complete run folder.
    let o = genlab(
        &[
            "train",
            "sr",
            "--dry-run",
            "-q",
            "--images",
            train,
            "--val",
            set5,
            "--out",
            "srrun",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "config.toml",
        "weights.safetensors",
        "state.json",
        "metrics.jsonl",
        "loss.png",
    ] {
        assert!(d.join("srrun").join(f).is_file(), "missing {f}");
    }
    // Without a validation folder, and with the default run folder (numbered when taken).
    for _ in 0..2 {
        let o = genlab(&["train", "sr", "--dry-run", "-q", "--images", train], d);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(d.join("runs/fsrcnn-x2-dry-run-2/metrics.jsonl").is_file());
    // A resumable SR run is recognised by `train --resume`.
    let o = genlab(&["train", "--resume", "srrun", "--epochs", "2", "-q"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    // A deeper FSRCNN grown from that run (identity mapping layers added), and sizes that do
    // not fit it.
    let o = genlab(
        &[
            "train",
            "sr",
            "--dry-run",
            "-q",
            "--images",
            train,
            "--dims",
            "56,12,6",
            "--init-from",
            "srrun",
            "--out",
            "grown",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(d.join("grown/config.toml")).expect("config");
    assert!(cfg.contains("m = 6"), "{cfg}");
    fails_with(
        &genlab(
            &[
                "train",
                "sr",
                "--dry-run",
                "--images",
                train,
                "--dims",
                "56,16,6",
                "--init-from",
                "srrun",
            ],
            d,
        ),
        "weights.safetensors",
    );
    fails_with(
        &genlab(
            &[
                "train",
                "sr",
                "--dry-run",
                "--images",
                train,
                "--dims",
                "56,12",
            ],
            d,
        ),
        "--dims 56,12",
    );
    fails_with(
        &genlab(
            &[
                "train",
                "sr",
                "--dry-run",
                "--images",
                train,
                "--dims",
                "0,12,4",
            ],
            d,
        ),
        "model.d",
    );
    fails_with(
        &genlab(
            &[
                "train",
                "sr",
                "--dry-run",
                "--images",
                train,
                "--net",
                "espcn",
                "--dims",
                "8,4,2",
            ],
            d,
        ),
        "--net espcn",
    );

    // Evaluation: the run folder, and the shipped model, on Set5 with bicubic alongside.
    let o = genlab(&["eval", "sr", "--set", set5, "--json"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let set = &v["sets"][0];
    assert_eq!(set["images"], 5);
    let bicubic = set["bicubic_psnr"].as_f64().expect("bicubic");
    assert!((bicubic - 33.64).abs() < 0.01, "Set5 x2 bicubic {bicubic}");
    assert!(set["psnr"].as_f64().expect("psnr") > bicubic + 1.0, "{set}");
    let o = genlab(&["eval", "sr", "--set", set5], d);
    assert!(String::from_utf8_lossy(&o.stdout).contains("bicubic"));
    let o = genlab(&["eval", "srrun", "--set", set5], d);
    assert!(o.status.success(), "{}", stderr(&o));

    // Upscaling every kind of picture with the shipped model.
    let write = |name: &str, img: image::DynamicImage| {
        let p = d.join(name);
        img.save(&p).expect("fixture");
        p.to_str().expect("utf8").to_string()
    };
    let grey = write(
        "grey.png",
        image::GrayImage::from_fn(40, 30, |x, y| image::Luma([(x * 6 + y) as u8])).into(),
    );
    let rgba = write(
        "rgba.png",
        image::RgbaImage::from_fn(40, 30, |x, y| {
            image::Rgba([x as u8 * 5, y as u8 * 7, 90, (x * 6) as u8])
        })
        .into(),
    );
    let deep = write(
        "deep.png",
        image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(40, 30, |x, y| {
            image::Rgb([x as u16 * 1500, y as u16 * 2000, 30000])
        })
        .into(),
    );
    let palette = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/palette.png");
    let palette = palette.to_str().expect("utf8");
    for (inp, out, channels) in [
        (grey.as_str(), "grey-x2.png", 1u8),
        (rgba.as_str(), "rgba-x2.png", 4),
        (deep.as_str(), "deep-x2.jpg", 3),
        (palette, "palette-x2.bmp", 3),
    ] {
        let o = genlab(&["upscale", inp, "-o", out, "-q"], d);
        assert!(o.status.success(), "{inp}: {}", stderr(&o));
        let img = image::open(d.join(out)).expect("output");
        assert_eq!((img.width(), img.height()), (80, 60), "{out}");
        if out.ends_with(".png") {
            assert_eq!(img.color().channel_count(), channels, "{out}");
        }
    }
    let o = genlab(
        &["upscale", &grey, "-o", "grey-x3.png", "--scale", "3", "-q"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image::open(d.join("grey-x3.png")).expect("x3").width(), 120);
    // A folder in, a folder out.
    std::fs::create_dir(d.join("in")).expect("mkdir");
    std::fs::copy(&grey, d.join("in/a.png")).expect("copy");
    std::fs::copy(palette, d.join("in/b.png")).expect("copy");
    std::fs::write(d.join("in/README.txt"), "not an image: skipped").expect("write");
    let o = genlab(&["upscale", "in", "-o", "out", "-q"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("out/a.png").is_file() && d.join("out/b.png").is_file());
    assert_eq!(std::fs::read_dir(d.join("out")).expect("ls").count(), 2);
    // Never over an input: the same folder, the same file.
    let before = std::fs::read(d.join("in/a.png")).expect("read");
    fails_with(
        &genlab(&["upscale", "in", "-o", "in", "-q"], d),
        "inside the input folder",
    );
    fails_with(
        &genlab(&["upscale", "in/a.png", "-o", "in/a.png", "-q"], d),
        "is an input of this command",
    );
    assert_eq!(std::fs::read(d.join("in/a.png")).expect("read"), before);

    // Bad input: one-line errors, nothing written.
    std::fs::write(d.join("corrupt.png"), b"\x89PNG\r\n\x1a\nnot really").expect("write");
    let full = std::fs::read(&grey).expect("read");
    std::fs::write(d.join("truncated.png"), &full[..full.len() / 2]).expect("write");
    let tiny = write(
        "tiny.png",
        image::GrayImage::from_pixel(4, 4, image::Luma([9])).into(),
    );
    fails_with(
        &genlab(&["upscale", "corrupt.png", "-o", "x.png"], d),
        "corrupt.png",
    );
    fails_with(
        &genlab(&["upscale", "truncated.png", "-o", "x.png"], d),
        "truncated.png",
    );
    fails_with(&genlab(&["upscale", &tiny, "-o", "x.png"], d), "tiny.png");
    fails_with(
        &genlab(
            &[
                "upscale", &grey, "-o", "x.png", "--model", "srrun", "--scale", "3",
            ],
            d,
        ),
        "--scale 3",
    );
    fails_with(
        &genlab(&["upscale", &grey, "-o", "x.png", "--scale", "8"], d),
        "scale",
    );
    fails_with(
        &genlab(&["upscale", &grey, "-o", "missing/x.png"], d),
        "missing",
    );
    fails_with(&genlab(&["upscale", &grey, "-o", "x.gif"], d), "x.gif");
    fails_with(
        &genlab(&["upscale", "nothing.png", "-o", "x.png"], d),
        "nothing.png",
    );
    assert!(!d.join("x.png").exists());
    fails_with(
        &genlab(&["train", "sr", "--images", "nowhere", "--dry-run"], d),
        "nowhere",
    );
    fails_with(
        &genlab(
            &[
                "train",
                "sr",
                "--images",
                train,
                "--output-lr-scale",
                "0",
                "--dry-run",
            ],
            d,
        ),
        "train.output_lr_scale = 0",
    );
    usage_error(
        &genlab(&["train", "vae", "--scale", "2", "--dry-run"], d),
        "unexpected argument '--scale'",
    );
    fails_with(&genlab(&["sample", "srrun"], d), "super-resolution run");
}

/// The shipped models meet the target, SRCNN's published Y-PSNR (Dong et al. 2016,
/// Table 3), on Set5 and Set14 at every scale, by `genlab eval sr` on the standard LR inputs
/// (the shipped figures, BENCHMARKS.md: 36.72 / 32.52, 32.96 / 29.41, 30.78 / 27.66).
#[test]
fn shipped_models_reach_srcnn_on_set5_and_set14() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let shared = shared_sr();
    // (scale, floor on Set5, floor on Set14)
    for (s, set5, set14) in [(2, 36.66, 32.42), (3, 32.75, 29.28), (4, 30.48, 27.49)] {
        let mut args = vec!["eval".to_string(), "sr".into(), "--json".into()];
        args.extend(["--scale".into(), s.to_string()]);
        for set in ["Set5", "Set14"] {
            let p = shared.join(set).join(format!("x{s}"));
            args.extend(["--set".into(), p.to_str().expect("utf8").into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = genlab(&args, tmp.path());
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        for (row, want) in v["sets"]
            .as_array()
            .expect("sets")
            .iter()
            .zip([set5, set14])
        {
            let got = row["psnr"].as_f64().expect("psnr");
            // Published figures have two decimals.
            assert!(
                got >= want - 0.005,
                "x{s} {}: {got:.3} dB < {want}",
                row["set"]
            );
        }
    }
}
