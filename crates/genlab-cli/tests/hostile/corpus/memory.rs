//! Memory: requests refused with the estimate and the limit before allocating.

use super::super::*;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    cs.push(
        case(
            "idx-gzip-bomb",
            Fail,
            &["train-images-idx3-ubyte"],
            move |d, fx| {
                idx_dataset(d, fx, "train-images-idx3-ubyte", &|_| {
                    gzip(&vec![0u8; 4 << 20])
                });
                train_vae("mnist")
            },
        )
        .env("GENLAB_MEMORY_LIMIT", "1M"),
    );
    cs.push(
        case(
            "upscale-over-the-memory-limit",
            Fail,
            &["memory"],
            |d, fx| {
                std::fs::write(d.join("p.png"), &fx.png).expect("write");
                args(&["upscale", "p.png", "-o", "o.png", "-q"])
            },
        )
        .env("GENLAB_MEMORY_LIMIT", "4K"),
    );
    cs.push(
        case(
            "folder-dataset-over-the-memory-limit",
            Fail,
            &["photos"],
            |d, fx| {
                photo_folder(d, fx);
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
        )
        .env("GENLAB_MEMORY_LIMIT", "1K"),
    );
    cs.push(
        case(
            "sample-n-over-the-memory-limit",
            Fail,
            &["-n 4096"],
            |_, fx| sample_cmd(fx.vae.clone(), &["-n", "4096", "-o", "s.png"]),
        )
        .env("GENLAB_MEMORY_LIMIT", "64M"),
    );
    cs.push(case(
        "train-dry-run-checks-the-real-batch",
        Fail,
        &["batch_size 100000000"],
        |_, _| {
            args(&[
                "train",
                "vae",
                "--dry-run",
                "-q",
                "--out",
                "r",
                "--batch-size",
                "100000000",
            ])
        },
    ));
    cs.push(case(
        "train-sr-dry-run-checks-the-real-batch",
        Fail,
        &["100000000"],
        |d, fx| {
            photo_folder(d, fx);
            args(&[
                "train",
                "sr",
                "--images",
                "photos",
                "--dry-run",
                "-q",
                "--out",
                "r",
                "--batch-size",
                "100000000",
            ])
        },
    ));
    cs.push(case("train-sr-huge-patch", Fail, &["100000"], |d, fx| {
        photo_folder(d, fx);
        args(&[
            "train",
            "sr",
            "--images",
            "photos",
            "--dry-run",
            "-q",
            "--out",
            "r",
            "--patch",
            "100000",
        ])
    }));
    cs.push(case(
        "bench-huge-synthetic-batch",
        Fail,
        &["batch_size 100000000"],
        |_, _| {
            args(&[
                "bench",
                "-w",
                "mlp-vae",
                "--input",
                "synthetic",
                "--batch-size",
                "100000000",
            ])
        },
    ));
}
