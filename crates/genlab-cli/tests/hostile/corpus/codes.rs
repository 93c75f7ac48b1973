//! encode / decode: outputs that would replace inputs, code files of every broken form.

use super::super::*;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    cs.push(case(
        "encode-output-is-the-image",
        Fail,
        &["d.png"],
        move |d, fx| {
            std::fs::write(d.join("d.png"), &fx.png).expect("write");
            let mut a = args(&["encode"]);
            a.push(vae_arg(fx));
            a.extend(args(&["d.png", "-o", "d.png"]));
            a
        },
    ));
    cs.push(case(
        "encode-default-output-exists-not-genlab",
        Fail,
        &["d.glz"],
        move |d, fx| {
            std::fs::write(d.join("d.png"), &fx.png).expect("write");
            std::fs::write(d.join("d.glz"), b"my notes").expect("write");
            let mut a = args(&["encode"]);
            a.push(vae_arg(fx));
            a.push("d.png".into());
            a
        },
    ));
    cs.push(
        case(
            "encode-default-output-replaces-own-code",
            Ok,
            &[],
            move |d, fx| {
                std::fs::write(d.join("d.png"), &fx.png).expect("write");
                std::fs::write(d.join("d.glz"), code_bytes(1, &[0.0])).expect("write");
                let mut a = args(&["encode"]);
                a.push(vae_arg(fx));
                a.push("d.png".into());
                a
            },
        )
        .may_change("d.glz"),
    );
    cs.push(case(
        "encode-output-is-run-weights",
        Fail,
        &["weights.safetensors"],
        move |d, fx| {
            std::fs::write(d.join("d.png"), &fx.png).expect("write");
            let r = run_copy(d, &fx.vae);
            args(&[
                OsString::from("encode"),
                r.clone().into_os_string(),
                OsString::from("d.png"),
                OsString::from("-o"),
                r.join("weights.safetensors").into_os_string(),
            ])
        },
    ));
    cs.push(case("encode-with-a-gan", Fail, &["gan"], |d, fx| {
        std::fs::write(d.join("d.png"), &fx.png).expect("write");
        args(&[
            OsString::from("encode"),
            fx.gan.clone().into_os_string(),
            OsString::from("d.png"),
            OsString::from("-o"),
            OsString::from("c.glz"),
        ])
    }));
    let codes: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("magic-only", b"GENLABZ1".to_vec()),
        (
            "wrong-magic",
            b"GENLABZ2\x02\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
        ),
        ("short-values", code_bytes(2, &[0.5])),
        ("long-values", code_bytes(2, &[0.5, 0.5, 0.5])),
        ("huge-header", code_bytes(u32::MAX, &[0.5, 0.5])),
        ("zero-values", code_bytes(0, &[])),
        ("nan", code_bytes(2, &[f32::NAN, 0.0])),
        ("inf", code_bytes(2, &[0.0, f32::INFINITY])),
        ("wrong-latent-size", code_bytes(3, &[0.0, 0.0, 0.0])),
        ("text", b"GENLABZ1 is a nice magic".to_vec()),
        // A well-formed conditional VAE's code (class 1) given to a plain VAE.
        ("labelled-for-a-vae", {
            let mut b = b"GENLABZ2".to_vec();
            for w in [2u32, 1] {
                b.extend(w.to_le_bytes());
            }
            for v in [0.1f32, -0.2] {
                b.extend(v.to_le_bytes());
            }
            b
        }),
    ];
    for (name, bytes) in codes {
        cs.push(case(
            &format!("decode-code-{name}"),
            Fail,
            &["c.glz"],
            move |d, fx| {
                std::fs::write(d.join("c.glz"), &bytes).expect("write");
                let mut a = args(&["decode"]);
                a.push(vae_arg(fx));
                a.extend(args(&["c.glz", "-o", "out.png"]));
                a
            },
        ));
    }
    cs.push(case(
        "decode-default-output-would-replace-the-original",
        Fail,
        &["d.png"],
        move |d, fx| {
            std::fs::write(d.join("d.png"), &fx.png).expect("write");
            std::fs::write(d.join("d.glz"), code_bytes(2, &[0.1, -0.2])).expect("write");
            let mut a = args(&["decode"]);
            a.push(vae_arg(fx));
            a.push("d.glz".into());
            a
        },
    ));
    cs.push(case(
        "decode-output-is-the-code",
        Fail,
        &["c.png"],
        move |d, fx| {
            std::fs::write(d.join("c.png"), code_bytes(2, &[0.1, -0.2])).expect("write");
            let mut a = args(&["decode"]);
            a.push(vae_arg(fx));
            a.extend(args(&["c.png", "-o", "c.png"]));
            a
        },
    ));
    cs.push(case("decode-good-code", Ok, &[], move |d, fx| {
        std::fs::write(d.join("c.glz"), code_bytes(2, &[0.1, -0.2])).expect("write");
        let mut a = args(&["decode"]);
        a.push(vae_arg(fx));
        a.extend(args(&["c.glz", "-o", "out.png"]));
        a
    }));
}
