//! Run folders given to the inference commands.

use super::super::*;
use safetensors::Dtype;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    cs.push(case(
        "sample-output-is-a-pipe",
        Fail,
        &["pipe.png"],
        |d, fx| {
            let made = Command::new("mkfifo")
                .arg(d.join("pipe.png"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(made, "mkfifo");
            let mut a = args(&["sample"]);
            a.push(vae_arg(fx));
            a.extend(args(&["-n", "4", "-o", "pipe.png"]));
            a
        },
    ));
    cs.push(case(
        "sample-output-is-dev-null",
        Fail,
        &["/dev/null"],
        |_, fx| {
            let mut a = args(&["sample"]);
            a.push(vae_arg(fx));
            a.extend(args(&["-n", "4", "-o", "/dev/null"]));
            a
        },
    ));
    for (name, file, bytes) in [
        (
            "config-garbage",
            "config.toml",
            b"\x00\x01\x02 not toml".to_vec(),
        ),
        ("config-empty", "config.toml", Vec::new()),
        (
            "config-unknown-kind",
            "config.toml",
            b"[model]\nkind = \"transformer\"\n".to_vec(),
        ),
        (
            "config-no-model",
            "config.toml",
            b"[train]\nepochs = 1\n".to_vec(),
        ),
        (
            "config-type-error",
            "config.toml",
            b"[model]\nkind = \"vae\"\nlatent = \"two\"\n".to_vec(),
        ),
        (
            "config-unknown-key",
            "config.toml",
            b"[model]\nkind = \"vae\"\nlatnet = 2\n".to_vec(),
        ),
    ] {
        cs.push(case(
            &format!("sample-{name}"),
            Fail,
            &[file],
            move |d, fx| {
                let r = run_with(d, &fx.vae, file, &bytes);
                sample_cmd(r, &["-o", "out.png"])
            },
        ));
    }
    cs.push(case("sample-run-missing", Fail, &["nope"], |_, _| {
        args(&["sample", "nope"])
    }));
    cs.push(case("sample-run-is-a-file", Fail, &["f"], |d, _| {
        std::fs::write(d.join("f"), b"x").expect("write");
        args(&["sample", "f"])
    }));
    cs.push(case(
        "sample-weights-missing",
        Fail,
        &["weights.safetensors"],
        |d, fx| {
            let r = run_copy(d, &fx.vae);
            std::fs::remove_file(r.join("weights.safetensors")).expect("rm");
            sample_cmd(r, &["-o", "out.png"])
        },
    ));
    cs.push(case(
        "sample-output-is-run-config",
        Fail,
        &["config.toml"],
        |d, fx| {
            let r = run_copy(d, &fx.vae);
            let mut a = args(&["sample"]);
            a.push(r.clone().into_os_string());
            a.push("-o".into());
            a.push(r.join("config.toml").into_os_string());
            a
        },
    ));
    cs.push(case(
        "sample-output-is-a-training-sample",
        Fail,
        &["epoch-001.png"],
        |d, fx| {
            let r = run_copy(d, &fx.vae);
            let mut a = args(&["sample"]);
            a.push(r.clone().into_os_string());
            a.push("-o".into());
            a.push(r.join("samples/epoch-001.png").into_os_string());
            a
        },
    ));
    cs.push(case(
        "sample-output-unknown-format",
        Fail,
        &["s.txt"],
        |_, fx| sample_cmd(fx.vae.clone(), &["-o", "s.txt"]),
    ));
    cs.push(case(
        "sample-output-folder-missing",
        Fail,
        &["missing"],
        |_, fx| sample_cmd(fx.vae.clone(), &["-o", "missing/s.png"]),
    ));
    cs.push(case(
        "sample-from-an-autoencoder",
        Fail,
        &["autoencoder"],
        |d, _| {
            ok(d, &["train", "ae", "--dry-run", "-q", "--out", "ae"]);
            args(&["sample", "ae", "-o", "s.png"])
        },
    ));
    for n in ["0", "5000", "-1", "many"] {
        cs.push(case(&format!("sample-n-{n}"), Usage, &[n], move |_, fx| {
            sample_cmd(fx.vae.clone(), &["-n", n, "-o", "s.png"])
        }));
    }
    cs.push(case(
        "sample-nan-weights-everywhere",
        Fail,
        &["weights.safetensors"],
        |d, fx| {
            let r = run_copy(d, &fx.gan);
            let (mut ts, meta) = read_safetensors(&r.join("weights.safetensors"));
            for t in &mut ts {
                t.2.iter_mut().for_each(|v| *v = f32::NAN);
            }
            write_safetensors(&r.join("weights.safetensors"), &ts, &meta, &|_, v| {
                (Dtype::F32, f32_bytes(v))
            });
            sample_cmd(r, &["-o", "out.png"])
        },
    ));
    for (name, extra) in [
        ("from-out-of-range", vec!["--from", "99999"]),
        ("steps-1", vec!["--steps", "1"]),
        ("steps-huge", vec!["--steps", "100000"]),
    ] {
        let expect = if name.starts_with("steps") {
            Usage
        } else {
            Fail
        };
        let mention = if name == "from-out-of-range" {
            "99999"
        } else {
            extra[1]
        };
        cs.push(case(
            &format!("interpolate-{name}"),
            expect,
            &[mention],
            move |_, fx| {
                let mut a = args(&["interpolate"]);
                a.push(fx.vae.clone().into_os_string());
                a.extend(args(&extra));
                a.extend(args(&["-o", "i.png"]));
                a
            },
        ));
    }
    for (name, extra, expect, mention) in [
        ("nll-k-0", vec!["--nll", "--k", "0"], Usage, "0"),
        (
            "nll-k-1e9",
            vec!["--nll", "--k", "1000000000"],
            Usage,
            "1000000000",
        ),
        ("nll-on-a-gan", vec!["--nll"], Fail, "gan"),
        ("n-3", vec!["-n", "3"], Usage, "3"),
    ] {
        cs.push(case(
            &format!("eval-{name}"),
            expect,
            &[mention],
            move |_, fx| {
                let mut a = args(&["eval"]);
                a.push(
                    if name == "nll-on-a-gan" {
                        fx.gan.clone()
                    } else {
                        fx.vae.clone()
                    }
                    .into_os_string(),
                );
                a.extend(args(&extra));
                a
            },
        ));
    }
    cs.push(case(
        "eval-samples-too-few-for-a-frechet-distance",
        Fail,
        &["129"],
        |d, fx| {
            std::fs::create_dir_all(d.join("s")).expect("mkdir");
            let img =
                image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * y) % 256) as u8]));
            for i in 0..5 {
                img.save(d.join(format!("s/{i}.png"))).expect("save");
            }
            let _ = fx;
            args(&["eval", "--samples", "s", "--dataset", "mnist-10k"])
        },
    ));
}
