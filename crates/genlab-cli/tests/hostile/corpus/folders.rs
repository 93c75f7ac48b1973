//! Run folders: a new run never writes among someone else's files.

use super::super::*;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    cs.push(case(
        "train-out-inside-its-dataset-folder",
        Fail,
        &["photos/run"],
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
                "photos/run",
            ])
        },
    ));
    cs.push(case(
        "train-sr-out-inside-its-photos",
        Fail,
        &["photos/run"],
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
                "photos/run",
            ])
        },
    ));
    for (name, file) in [
        ("config", "config.toml"),
        ("metrics", "metrics.jsonl"),
        ("notes", "notes.txt"),
        ("state", "state.json"),
    ] {
        cs.push(case(
            &format!("train-out-is-a-folder-with-{name}"),
            Fail,
            &["mine"],
            move |d, _| {
                std::fs::create_dir_all(d.join("mine")).expect("mkdir");
                std::fs::write(d.join("mine").join(file), b"my own file\n").expect("write");
                args(&["train", "vae", "--dry-run", "-q", "--out", "mine"])
            },
        ));
    }
    cs.push(case("train-out-is-a-file", Fail, &["f"], |d, _| {
        std::fs::write(d.join("f"), b"mine").expect("write");
        args(&["train", "vae", "--dry-run", "-q", "--out", "f"])
    }));
    cs.push(case(
        "train-out-is-an-existing-run",
        Fail,
        &["run"],
        |d, fx| {
            copy_dir(&fx.vae, &d.join("run"));
            args(&["train", "vae", "--dry-run", "-q", "--out", "run"])
        },
    ));
    cs.push(case("train-out-is-an-empty-folder", Ok, &[], |d, _| {
        std::fs::create_dir_all(d.join("empty")).expect("mkdir");
        args(&["train", "vae", "--dry-run", "-q", "--out", "empty"])
    }));
    cs.push(case(
        "compare-out-is-a-users-folder",
        Fail,
        &["mine"],
        |d, _| {
            std::fs::create_dir_all(d.join("mine")).expect("mkdir");
            std::fs::write(d.join("mine/compare.md"), b"my notes").expect("write");
            args(&["compare", "--dry-run", "--out", "mine"])
        },
    ));
}
