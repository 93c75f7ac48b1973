//! Images given to upscale and encode: every broken form of each format.

use super::super::*;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    for (fmt, ext) in [("png", "png"), ("jpg", "jpg"), ("bmp", "bmp")] {
        let pick = move |fx: &Fixtures| match fmt {
            "png" => fx.png.clone(),
            "jpg" => fx.jpg.clone(),
            _ => fx.bmp.clone(),
        };
        for frac in [0usize, 1, 10, 50, 90, 99] {
            let name = format!("upscale-truncated-{fmt}-{frac}pct");
            cs.push(case(&name, Fail, &[&format!("in.{ext}")], move |d, fx| {
                let b = pick(fx);
                let n = (b.len() * frac / 100).max(if frac == 0 { 0 } else { 1 });
                let n = n.min(b.len() - 1);
                std::fs::write(d.join(format!("in.{ext}")), &b[..n]).expect("write");
                args(&["upscale", &format!("in.{ext}"), "-o", "out.png", "-q"])
            }));
            let name = format!("encode-truncated-{fmt}-{frac}pct");
            cs.push(case(&name, Fail, &[&format!("in.{ext}")], move |d, fx| {
                let b = pick(fx);
                let n = (b.len() * frac / 100).min(b.len() - 1);
                std::fs::write(d.join(format!("in.{ext}")), &b[..n]).expect("write");
                args(&[
                    OsString::from("encode"),
                    fx.vae.clone().into_os_string(),
                    OsString::from(format!("in.{ext}")),
                    OsString::from("-o"),
                    OsString::from("c.glz"),
                ])
            }));
        }
        for at in [3usize, 20, 200, 777, 1500, 4000] {
            let name = format!("upscale-flipped-{fmt}-byte{at}");
            cs.push(case(
                &name,
                OkOrFail,
                &[&format!("in.{ext}")],
                move |d, fx| {
                    std::fs::write(d.join(format!("in.{ext}")), flip(pick(fx), at)).expect("write");
                    args(&["upscale", &format!("in.{ext}"), "-o", "out.png", "-q"])
                },
            ));
        }
    }
    for (name, bytes) in [
        ("text", b"hello, not an image".to_vec()),
        ("empty", Vec::new()),
        (
            "png-magic-only",
            vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a],
        ),
        ("jpeg-soi-only", vec![0xff, 0xd8, 0xff]),
        ("bmp-magic-only", b"BM".to_vec()),
        ("fake-huge-png", fake_png(100_000, 100_000)),
        ("fake-zero-png", fake_png(0, 10)),
    ] {
        cs.push(case(
            &format!("upscale-{name}"),
            Fail,
            &["in.png"],
            move |d, _| {
                std::fs::write(d.join("in.png"), &bytes).expect("write");
                args(&["upscale", "in.png", "-o", "out.png", "-q"])
            },
        ));
    }
    cs.push(case(
        "upscale-missing-input",
        Fail,
        &["nope.png"],
        |_, _| args(&["upscale", "nope.png", "-o", "out.png"]),
    ));
    cs.push(case(
        "upscale-input-is-output",
        Fail,
        &["p.png"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "p.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-is-link-to-input",
        Fail,
        &["link.png"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            std::os::unix::fs::symlink(d.join("p.png"), d.join("link.png")).expect("symlink");
            args(&["upscale", "p.png", "-o", "link.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-is-hard-link-to-input",
        Fail,
        &["hard.png"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            std::fs::hard_link(d.join("p.png"), d.join("hard.png")).expect("link");
            args(&["upscale", "p.png", "-o", "hard.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-same-file-other-spelling",
        Fail,
        &["p.png"],
        |d, fx| {
            std::fs::create_dir_all(d.join("sub")).expect("mkdir");
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "sub/../p.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-onto-itself",
        Fail,
        &["dir"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/a.png"), &fx.png).expect("write");
            args(&["upscale", "dir", "-o", "dir", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-into-its-subfolder",
        Fail,
        &["dir"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/a.png"), &fx.png).expect("write");
            args(&["upscale", "dir", "-o", "dir/up", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-name-collision",
        Fail,
        &["x.png", "x.jpg"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/x.png"), &fx.png).expect("write");
            std::fs::write(d.join("dir/x.jpg"), &fx.jpg).expect("write");
            args(&["upscale", "dir", "-o", "out", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-with-a-truncated-jpeg",
        Fail,
        &["b.jpg"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/a.png"), &fx.png).expect("write");
            std::fs::write(d.join("dir/b.jpg"), &fx.jpg[..fx.jpg.len() / 2]).expect("write");
            args(&["upscale", "dir", "-o", "out", "-q"])
        },
    ));
    cs.push(case(
        "upscale-folder-to-a-file",
        Fail,
        &["f.png"],
        |d, fx| {
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
            std::fs::write(d.join("dir/a.png"), &fx.png).expect("write");
            std::fs::write(d.join("f.png"), &fx.png).expect("write");
            args(&["upscale", "dir", "-o", "f.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-folder-missing",
        Fail,
        &["no/such"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "no/such/out.png", "-q"])
        },
    ));
    cs.push(case(
        "upscale-unknown-output-format",
        Fail,
        &["out.gif"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "out.gif", "-q"])
        },
    ));
    cs.push(case(
        "upscale-output-is-a-folder",
        Fail,
        &["outdir"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            std::fs::create_dir_all(d.join("outdir")).expect("mkdir");
            args(&["upscale", "p.png", "-o", "outdir", "-q"])
        },
    ));
    cs.push(case("upscale-replaces-a-named-output", Ok, &[], |d, fx| {
        std::fs::write(d.join("p.png"), &fx.png).expect("write");
        args(&["upscale", "p.png", "-o", "out.jpg", "-q"])
    }));
    for s in ["0", "1", "5", "-2", "x"] {
        cs.push(case(
            &format!("upscale-scale-{s}"),
            if s == "5" || s == "0" || s == "1" {
                Fail
            } else {
                Usage
            },
            &[s],
            move |d, fx| {
                std::fs::write(d.join("p.png"), &fx.png).expect("write");
                args(&["upscale", "p.png", "-o", "o.png", "--scale", s, "-q"])
            },
        ));
    }
    cs.push(case("upscale-tile-too-small", Usage, &["8"], |d, fx| {
        std::fs::write(d.join("p.png"), &fx.png).expect("write");
        args(&["upscale", "p.png", "-o", "o.png", "--tile", "8"])
    }));
    cs.push(case(
        "upscale-model-not-a-run",
        Fail,
        &["notarun"],
        |d, fx| {
            std::fs::create_dir_all(d.join("notarun")).expect("mkdir");
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&["upscale", "p.png", "-o", "o.png", "--model", "notarun"])
        },
    ));
    cs.push(case(
        "upscale-model-is-a-vae-run",
        Fail,
        &["vae"],
        |d, fx| {
            std::fs::write(d.join("p.png"), &fx.png).expect("write");
            args(&[
                OsString::from("upscale"),
                OsString::from("p.png"),
                OsString::from("-o"),
                OsString::from("o.png"),
                OsString::from("--model"),
                fx.vae.clone().into_os_string(),
            ])
        },
    ));
}
