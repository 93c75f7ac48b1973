//! Training flags and presets sized or shaped out of reach.

use super::super::*;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    for (name, extra, expect, mention) in [
        (
            "epochs-beyond-u63",
            vec!["--epochs", "18446744073709551615"],
            Fail,
            "18446744073709551615",
        ),
        (
            "latent-1e8",
            vec!["--latent", "100000000"],
            Fail,
            "model.latent = 100000000",
        ),
        (
            "latent-1e12",
            vec!["--latent", "1000000000000"],
            Fail,
            "1000000000000",
        ),
        ("latent-0", vec!["--latent", "0"], Fail, "latent"),
        ("batch-0", vec!["--batch-size", "0"], Fail, "batch_size"),
        (
            "batch-1e12",
            vec!["--batch-size", "1000000000000", "--epochs", "1"],
            Fail,
            "1000000000000",
        ),
        ("epochs-0", vec!["--epochs", "0"], Fail, "epochs"),
        ("lr-negative", vec!["--lr=-1"], Fail, "lr"),
        ("lr-nan", vec!["--lr", "NaN"], Fail, "lr"),
        ("lr-inf", vec!["--lr", "inf"], Fail, "lr"),
        ("beta-negative", vec!["--beta=-1"], Fail, "beta"),
        ("beta-nan", vec!["--beta", "nan"], Fail, "beta"),
        (
            "seed-above-i64",
            vec!["--seed", "18446744073709551615"],
            Fail,
            "18446744073709551615",
        ),
        (
            "unknown-dataset",
            vec!["--dataset", "imagenet"],
            Fail,
            "imagenet",
        ),
        (
            "unknown-preset",
            vec!["--preset", "no-such-preset"],
            Fail,
            "no-such-preset",
        ),
        (
            "preset-of-another-family",
            vec!["--preset", "mnist-dcgan"],
            Fail,
            "mnist-dcgan",
        ),
        ("unknown-flag", vec!["--latnet", "2"], Usage, "latnet"),
        (
            "device-wgpu-not-built",
            vec!["--device", "wgpu"],
            Fail,
            "wgpu",
        ),
    ] {
        let no_dry = name == "batch-1e12";
        cs.push(case(
            &format!("train-{name}"),
            expect,
            &[mention],
            move |_, _| {
                let mut a = args(&["train", "vae", "-q", "--out", "r"]);
                if !no_dry {
                    a.push("--dry-run".into());
                }
                a.extend(args(&extra));
                a
            },
        ));
    }
    for (name, toml, mention) in [
        (
            "type-error",
            "[model]\nkind = \"vae\"\nlatent = \"two\"\n",
            "line 3",
        ),
        (
            "negative",
            "[model]\nkind = \"vae\"\nlatent = -3\n",
            "line 3",
        ),
        (
            "unknown-key",
            "[model]\nkind = \"vae\"\nlatnet = 3\n",
            "latnet",
        ),
        (
            "huge-hidden",
            "[model]\nkind = \"vae\"\nhidden = [4000000000]\n",
            "hidden",
        ),
        (
            "huge-folder-image",
            "[model]\nkind = \"dcgan\"\n\n[train]\ndataset = \"photos\"\nfolder_image = [3, 100000, 100000]\n",
            "100000",
        ),
        (
            "bad-betas",
            "[model]\nkind = \"vae\"\n\n[train]\nbetas = [1.5, 0.9]\n",
            "betas",
        ),
        (
            "nan-lr",
            "[model]\nkind = \"vae\"\n\n[train]\nlr = nan\n",
            "lr",
        ),
        ("not-toml", "this is = = not toml", "p.toml"),
        ("empty", "", "p.toml"),
        ("binary", "\u{0}\u{1}\u{2}", "p.toml"),
        (
            "unknown-kind",
            "[model]\nkind = \"transformer\"\n",
            "transformer",
        ),
        (
            "deep-nesting",
            &format!(
                "[model]\nkind = \"vae\"\nx = {}{}\n",
                "[".repeat(5000),
                "]".repeat(5000)
            ),
            "p.toml",
        ),
    ] {
        let toml = toml.to_string();
        cs.push(case(
            &format!("preset-{name}"),
            Fail,
            &[mention],
            move |d, fx| {
                photo_folder(d, fx);
                std::fs::write(d.join("p.toml"), &toml).expect("write");
                args(&[
                    "train",
                    if toml.contains("dcgan") { "gan" } else { "vae" },
                    "--preset",
                    "p.toml",
                    "--dry-run",
                    "-q",
                    "--out",
                    "r",
                ])
            },
        ));
    }
}
