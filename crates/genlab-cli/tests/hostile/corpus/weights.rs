//! Weights: dtypes PyTorch users save, and every way a file can be broken.

use super::super::*;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    use safetensors::Dtype;
    let dtype_cases: Vec<(&str, Expect, Dtype)> = vec![
        ("f16", Ok, Dtype::F16),
        ("bf16", Ok, Dtype::BF16),
        ("f64", Ok, Dtype::F64),
        ("i64", Fail, Dtype::I64),
        ("i32", Fail, Dtype::I32),
        ("u8", Fail, Dtype::U8),
        ("bool", Fail, Dtype::BOOL),
    ];
    for (name, expect, dt) in dtype_cases {
        for cmd in ["sample", "reconstruct"] {
            cs.push(case(
                &format!("{cmd}-weights-{name}"),
                expect,
                &["weights.safetensors"],
                move |d, fx| {
                    let r = run_copy(d, &fx.vae);
                    write_safetensors(
                        &r.join("weights.safetensors"),
                        &fx.tensors,
                        &fx.meta,
                        &|_, v| match dt {
                            Dtype::F16 => (
                                dt,
                                v.iter()
                                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                                    .collect(),
                            ),
                            Dtype::BF16 => (
                                dt,
                                v.iter()
                                    .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                                    .collect(),
                            ),
                            Dtype::F64 => (
                                dt,
                                v.iter().flat_map(|x| f64::from(*x).to_le_bytes()).collect(),
                            ),
                            Dtype::I64 => (
                                dt,
                                v.iter().flat_map(|x| (*x as i64).to_le_bytes()).collect(),
                            ),
                            Dtype::I32 => (
                                dt,
                                v.iter().flat_map(|x| (*x as i32).to_le_bytes()).collect(),
                            ),
                            _ => (dt, v.iter().map(|x| (*x > 0.0) as u8).collect()),
                        },
                    );
                    let mut a = args(&[cmd]);
                    a.push(r.into_os_string());
                    a.extend(args(&["-n", "4", "-o", "out.png"]));
                    a
                },
            ));
        }
    }
    #[allow(clippy::type_complexity)]
    let tensor_edits: Vec<(&str, fn(&mut Tensors))> = vec![
        ("nan", |ts| ts[0].2[0] = f32::NAN),
        ("inf", |ts| ts[1].2[0] = f32::NEG_INFINITY),
        ("missing-tensor", |ts| {
            ts.remove(0);
        }),
        ("extra-tensor", |ts| {
            ts.push(("zzz.weight".into(), vec![3], vec![0.0; 3]))
        }),
        ("wrong-shape", |ts| {
            ts[0] = (ts[0].0.clone(), vec![2, 2], vec![0.0; 4])
        }),
        ("renamed-tensor", |ts| ts[0].0.push_str(".x")),
        ("no-tensors", |ts| ts.clear()),
    ];
    for (name, f) in tensor_edits {
        cs.push(case(
            &format!("sample-weights-{name}"),
            Fail,
            &["weights.safetensors"],
            move |d, fx| {
                let r = run_copy(d, &fx.vae);
                let mut ts = fx.tensors.clone();
                f(&mut ts);
                write_safetensors(&r.join("weights.safetensors"), &ts, &fx.meta, &|_, v| {
                    (Dtype::F32, f32_bytes(v))
                });
                sample_cmd(r, &["-n", "4", "-o", "out.png"])
            },
        ));
    }
    for (name, edit) in [
        ("truncated-half", 50usize),
        ("truncated-header", 1),
        ("truncated-last-byte", 99),
    ] {
        cs.push(case(
            &format!("sample-weights-{name}"),
            Fail,
            &["weights.safetensors"],
            move |d, fx| {
                let w = std::fs::read(fx.vae.join("weights.safetensors")).expect("read");
                let n = if edit == 99 {
                    w.len() - 1
                } else if edit == 1 {
                    20
                } else {
                    w.len() / 2
                };
                let r = run_with(d, &fx.vae, "weights.safetensors", &w[..n]);
                sample_cmd(r, &["-o", "out.png"])
            },
        ));
    }
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("garbage", b"not a safetensors file at all".to_vec()),
        ("huge-header-length", {
            let mut b = (u64::MAX / 2).to_le_bytes().to_vec();
            b.extend(b"{}");
            b
        }),
        ("header-not-json", {
            let mut b = 8u64.to_le_bytes().to_vec();
            b.extend(b"{{{{{{{{");
            b
        }),
        ("offsets-past-end", {
            let h = br#"{"a":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#;
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend(h);
            b.extend([0u8; 16]);
            b
        }),
    ] {
        cs.push(case(
            &format!("sample-weights-{name}"),
            Fail,
            &["weights.safetensors"],
            move |d, fx| {
                let r = run_with(d, &fx.vae, "weights.safetensors", &bytes);
                sample_cmd(r, &["-o", "out.png"])
            },
        ));
    }
    for at in [0usize, 7, 9, 30, 100] {
        cs.push(case(
            &format!("sample-weights-flipped-byte{at}"),
            OkOrFail,
            &["weights.safetensors"],
            move |d, fx| {
                let w = std::fs::read(fx.vae.join("weights.safetensors")).expect("read");
                let r = run_with(d, &fx.vae, "weights.safetensors", &flip(w, at));
                sample_cmd(r, &["-o", "out.png"])
            },
        ));
    }
}
