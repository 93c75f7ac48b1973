//! Datasets: IDX, gzip, CIFAR-10 and image folders, broken every way.

use super::super::*;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    let idx_edits: Vec<(&str, &str, Edit, Expect)> = vec![
        (
            "train-images-empty-file",
            "train-images-idx3-ubyte",
            Box::new(|_| Vec::new()),
            Fail,
        ),
        (
            "train-images-truncated",
            "train-images-idx3-ubyte",
            Box::new(|b| b[..b.len() - 5].to_vec()),
            Fail,
        ),
        (
            "train-images-trailing",
            "train-images-idx3-ubyte",
            Box::new(|mut b| {
                b.push(0);
                b
            }),
            Fail,
        ),
        (
            "train-images-header-only",
            "train-images-idx3-ubyte",
            Box::new(|b| b[..10].to_vec()),
            Fail,
        ),
        (
            "train-images-wrong-magic",
            "train-images-idx3-ubyte",
            Box::new(|mut b| {
                b[3] = 1;
                b
            }),
            Fail,
        ),
        (
            "train-images-wrong-type",
            "train-images-idx3-ubyte",
            Box::new(|mut b| {
                b[2] = 0x0d;
                b
            }),
            Fail,
        ),
        (
            "train-images-huge-dims",
            "train-images-idx3-ubyte",
            Box::new(|mut b| {
                b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
                b
            }),
            Fail,
        ),
        (
            "train-images-zero",
            "train-images-idx3-ubyte",
            Box::new(|_| idx_images(0, 28, 28, 0)),
            Fail,
        ),
        (
            "train-images-zero-side",
            "train-images-idx3-ubyte",
            Box::new(|_| idx_images(32, 0, 28, 0)),
            Fail,
        ),
        (
            "train-labels-out-of-range",
            "train-labels-idx1-ubyte",
            Box::new(|mut b| {
                b[10] = 200;
                b
            }),
            Fail,
        ),
        (
            "train-labels-fewer",
            "train-labels-idx1-ubyte",
            Box::new(|_| idx_labels(31)),
            Fail,
        ),
        (
            "train-labels-are-images",
            "train-labels-idx1-ubyte",
            Box::new(|_| idx_images(32, 28, 28, 0)),
            Fail,
        ),
        (
            "test-images-other-shape",
            "t10k-images-idx3-ubyte",
            Box::new(|_| idx_images(16, 20, 20, 0)),
            Fail,
        ),
        (
            "test-images-zero",
            "t10k-images-idx3-ubyte",
            Box::new(|_| idx_images(0, 28, 28, 0)),
            Fail,
        ),
        (
            "train-images-gz",
            "train-images-idx3-ubyte",
            Box::new(|b| gzip(&b)),
            Ok,
        ),
        (
            "train-images-gz-truncated",
            "train-images-idx3-ubyte",
            Box::new(|b| {
                let g = gzip(&b);
                g[..g.len() / 2].to_vec()
            }),
            Fail,
        ),
        (
            "train-images-gz-magic-garbage",
            "train-images-idx3-ubyte",
            Box::new(|_| vec![0x1f, 0x8b, 1, 2, 3, 4, 5]),
            Fail,
        ),
        (
            "train-images-gz-flipped",
            "train-images-idx3-ubyte",
            Box::new(|b| flip(gzip(&b), 40)),
            Fail,
        ),
    ];
    for (name, file, edit, expect) in idx_edits {
        let edit = Arc::new(edit);
        cs.push(case(
            &format!("idx-{name}"),
            expect,
            &[file],
            move |d, fx| {
                let e = edit.clone();
                idx_dataset(d, fx, file, &move |b| e(b));
                train_vae("mnist")
            },
        ));
    }
    cs.push(case(
        "idx-labels-out-of-range-classifier",
        Fail,
        &["train-labels-idx1-ubyte"],
        |d, fx| {
            idx_dataset(d, fx, "train-labels-idx1-ubyte", &|mut b| {
                b[9] = 200;
                b
            });
            args(&[
                "train",
                "classifier",
                "--dataset",
                "mnist",
                "--data-dir",
                "data",
                "--dry-run",
                "-q",
                "--out",
                "r",
            ])
        },
    ));
    cs.push(case(
        "idx-missing-test-labels",
        Fail,
        &["t10k-labels-idx1-ubyte"],
        move |d, fx| {
            idx_dataset(d, fx, "", &|b| b);
            std::fs::remove_file(d.join("data/mnist/t10k-labels-idx1-ubyte")).expect("rm");
            train_vae("mnist")
        },
    ));
    cs.push(case("idx-good", Ok, &[], move |d, fx| {
        idx_dataset(d, fx, "", &|b| b);
        train_vae("mnist")
    }));
    let cifar_edits: Vec<(&str, Edit)> = vec![
        ("truncated", Box::new(|b| b[..b.len() - 1].to_vec())),
        ("empty", Box::new(|_| Vec::new())),
        (
            "label-out-of-range",
            Box::new(|mut b| {
                b[3073] = 10;
                b
            }),
        ),
        ("one-byte", Box::new(|_| vec![3])),
    ];
    for (name, edit) in cifar_edits {
        let edit = Arc::new(edit);
        cs.push(case(
            &format!("cifar-{name}"),
            Fail,
            &["data_batch_1.bin"],
            move |d, fx| {
                let e = edit.clone();
                cifar_dataset(d, fx, &move |b| e(b));
                args(&[
                    "train",
                    "gan",
                    "--dataset",
                    "cifar10",
                    "--data-dir",
                    "data",
                    "--dry-run",
                    "-q",
                    "--out",
                    "r",
                ])
            },
        ));
    }
    cs.push(case(
        "cifar-missing-test-batch",
        Fail,
        &["test_batch.bin"],
        |d, fx| {
            cifar_dataset(d, fx, &|b| b);
            std::fs::remove_file(d.join("data/cifar10/test_batch.bin")).expect("rm");
            args(&[
                "train",
                "gan",
                "--dataset",
                "cifar10",
                "--data-dir",
                "data",
                "--dry-run",
                "-q",
                "--out",
                "r",
            ])
        },
    ));
    for (name, files) in [
        ("truncated-jpeg", vec![("a.png", 0), ("b.jpg", 1)]),
        ("truncated-png", vec![("a.jpg", 0), ("b.png", 1)]),
        ("only-non-images", vec![("notes.txt", 2)]),
        ("empty", vec![]),
    ] {
        let mention = if name.starts_with("truncated") {
            "b."
        } else {
            "photos"
        };
        cs.push(case(
            &format!("folder-dataset-{name}"),
            Fail,
            &[mention],
            move |d, fx| {
                let f = d.join("photos");
                std::fs::create_dir_all(&f).expect("mkdir");
                for (file, kind) in &files {
                    let bytes = match (*kind, file.ends_with("jpg")) {
                        (0, true) => fx.jpg.clone(),
                        (0, false) => fx.png.clone(),
                        (1, true) => fx.jpg[..fx.jpg.len() * 2 / 3].to_vec(),
                        (1, false) => fx.png[..fx.png.len() * 2 / 3].to_vec(),
                        _ => b"just text".to_vec(),
                    };
                    std::fs::write(f.join(file), bytes).expect("write");
                }
                args(&[
                    "train",
                    "gan",
                    "--dataset",
                    "photos",
                    "--dry-run",
                    "-q",
                    "--out",
                    "r",
                ])
            },
        ));
    }

    cs.push(case(
        "folder-dataset-with-a-link-cycle-and-a-pipe",
        Ok,
        &[],
        |d, fx| {
            let f = d.join("photos");
            std::fs::create_dir_all(f.join("sub")).expect("mkdir");
            std::fs::write(f.join("a.png"), &fx.png).expect("write");
            std::os::unix::fs::symlink(&f, f.join("sub/loop")).expect("symlink");
            std::os::unix::fs::symlink(d.join("nowhere"), f.join("broken.png")).expect("symlink");
            let fifo = f.join("pipe.png");
            let made = Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .is_ok_and(|s| s.success());
            assert!(made, "mkfifo");
            args(&[
                "train",
                "gan",
                "--dataset",
                "photos",
                "--dry-run",
                "-q",
                "--out",
                "r",
            ])
        },
    ));
    cs.push(case("upscale-a-pipe", Fail, &["pipe.png"], |d, _| {
        let made = Command::new("mkfifo")
            .arg(d.join("pipe.png"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(made, "mkfifo");
        args(&["upscale", "pipe.png", "-o", "o.png", "-q"])
    }));
    for (name, file, dir_or_big) in [
        ("config-is-a-folder", "config.toml", true),
        ("weights-is-a-folder", "weights.safetensors", true),
        ("config-is-huge", "config.toml", false),
    ] {
        cs.push(case(
            &format!("sample-{name}"),
            Fail,
            &[file],
            move |d, fx| {
                let r = run_copy(d, &fx.vae);
                std::fs::remove_file(r.join(file)).expect("rm");
                if dir_or_big {
                    std::fs::create_dir_all(r.join(file)).expect("mkdir");
                } else {
                    let f = std::fs::File::create(r.join(file)).expect("create");
                    f.set_len(64 << 20).expect("sparse file");
                }
                sample_cmd(r, &["-o", "out.png"])
            },
        ));
    }
    cs.push(case(
        "resume-state-is-a-folder",
        Fail,
        &["state.json"],
        |d, fx| {
            let r = run_copy(d, &fx.vae2);
            std::fs::remove_file(r.join("state.json")).expect("rm");
            std::fs::create_dir_all(r.join("state.json")).expect("mkdir");
            let mut a = args(&["train", "--resume"]);
            a.push(r.into_os_string());
            a
        },
    ));
}
