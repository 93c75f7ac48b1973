//! Resume: state, metrics and config that disagree, paths that leave the folder.

use super::super::*;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    let resume = |r: PathBuf| {
        let mut a = args(&["train", "--resume"]);
        a.push(r.into_os_string());
        a.push("-q".into());
        a
    };
    let resume_epochs = move |r: PathBuf, e: &str| {
        let mut a = resume(r);
        a.extend(args(&["--epochs", e]));
        a
    };
    cs.push(case(
        "resume-shorter-than-done",
        Fail,
        &["--epochs", "2"],
        move |d, fx| {
            let r = run_copy(d, &fx.vae2);
            resume_epochs(r, "1")
        },
    ));
    cs.push(case(
        "resume-finished-nothing-to-do",
        Fail,
        &["--epochs"],
        move |d, fx| {
            let r = run_copy(d, &fx.vae2);
            resume(r)
        },
    ));
    cs.push(
        case("resume-extends-a-finished-run", Ok, &[], move |d, fx| {
            let r = run_copy(d, &fx.vae2);
            resume_epochs(r, "3")
        })
        .resumes(),
    );
    cs.push(case(
        "resume-missing-folder",
        Fail,
        &["nope"],
        move |_, _| resume(PathBuf::from("nope")),
    ));
    cs.push(case(
        "resume-a-folder-that-is-no-run",
        Fail,
        &["config.toml"],
        move |d, _| {
            std::fs::create_dir_all(d.join("plain")).expect("mkdir");
            resume(d.join("plain"))
        },
    ));
    #[allow(clippy::type_complexity)]
    let state_edits: Vec<(&str, fn(&mut serde_json::Value), &str)> = vec![
        (
            "epochs-beyond-metrics",
            |v| v["epochs_done"] = 5.into(),
            "state.json",
        ),
        (
            "weights-path-outside",
            |v| v["weights"] = "../../../etc/passwd".into(),
            "weights",
        ),
        (
            "weights-path-absolute",
            |v| v["weights"] = "/etc/passwd".into(),
            "weights",
        ),
        (
            "optimizer-path-outside",
            |v| v["optimizer"] = "state/../../x.bpk".into(),
            "optimizer",
        ),
        (
            "weights-file-missing",
            |v| v["weights"] = "state/weights-99999999.safetensors".into(),
            "weights-99999999",
        ),
        ("kind-mismatch", |v| v["kind"] = "dcgan".into(), "dcgan"),
        (
            "step-inconsistent",
            |v| {
                v["epochs_done"] = 1.into();
                v["step"] = 999.into();
                v["status"] = "running".into()
            },
            "999",
        ),
        (
            "batches-beyond-epoch",
            |v| {
                v["epochs_done"] = 1.into();
                v["batches_done"] = 50.into();
                v["step"] = 54.into();
                v["status"] = "running".into()
            },
            "50",
        ),
        (
            "status-unknown",
            |v| v["status"] = "paused".into(),
            "state.json",
        ),
        (
            "field-missing",
            |v| {
                v.as_object_mut().expect("object").remove("step");
            },
            "state.json",
        ),
        ("step-negative", |v| v["step"] = (-4).into(), "state.json"),
        ("unknown-field", |v| v["extra"] = 1.into(), "state.json"),
    ];
    for (name, f, mention) in state_edits {
        cs.push(case(
            &format!("resume-state-{name}"),
            Fail,
            &[mention],
            move |d, fx| {
                let r = edit_state(d, fx, &f);
                resume_epochs(r, "3")
            },
        ));
    }
    for (name, bytes) in [
        ("garbage", b"{not json".to_vec()),
        ("empty", Vec::new()),
        ("array", b"[]".to_vec()),
    ] {
        cs.push(case(
            &format!("resume-state-file-{name}"),
            Fail,
            &["state.json"],
            move |d, fx| {
                let r = run_with(d, &fx.vae2, "state.json", &bytes);
                resume_epochs(r, "3")
            },
        ));
    }
    cs.push(
        case(
            "resume-metrics-torn-last-line-is-tolerated",
            Ok,
            &[],
            move |d, fx| {
                let r = run_copy(d, &fx.vae2);
                let mut m = std::fs::read(r.join("metrics.jsonl")).expect("metrics");
                m.extend(b"{\"epoch\": 3, \"tra");
                std::fs::write(r.join("metrics.jsonl"), m).expect("write");
                resume_epochs(r, "3")
            },
        )
        .resumes(),
    );
    cs.push(case(
        "resume-metrics-garbage-middle-line",
        Fail,
        &["metrics.jsonl"],
        move |d, fx| {
            let r = run_copy(d, &fx.vae2);
            let m = std::fs::read_to_string(r.join("metrics.jsonl")).expect("metrics");
            let lines: Vec<&str> = m.lines().collect();
            std::fs::write(
                r.join("metrics.jsonl"),
                format!("{}\nGARBAGE\n{}\n", lines[0], lines[1]),
            )
            .expect("write");
            resume_epochs(r, "3")
        },
    ));
    cs.push(case(
        "resume-metrics-epochs-out-of-order",
        Fail,
        &["metrics.jsonl"],
        move |d, fx| {
            let r = run_copy(d, &fx.vae2);
            let m = std::fs::read_to_string(r.join("metrics.jsonl")).expect("metrics");
            let lines: Vec<&str> = m.lines().collect();
            std::fs::write(
                r.join("metrics.jsonl"),
                format!("{}\n{}\n", lines[1], lines[0]),
            )
            .expect("write");
            resume_epochs(r, "3")
        },
    ));
    cs.push(case(
        "resume-metrics-missing",
        Fail,
        &["metrics.jsonl"],
        move |d, fx| {
            let r = run_copy(d, &fx.vae2);
            std::fs::remove_file(r.join("metrics.jsonl")).expect("rm");
            resume_epochs(r, "3")
        },
    ));
    cs.push(case(
        "resume-optimizer-state-corrupt",
        Fail,
        &["optimizer"],
        move |d, fx| {
            let r = run_copy(d, &fx.vae2);
            let st: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(r.join("state.json")).expect("s"))
                    .expect("j");
            let opt = r.join(st["optimizer"].as_str().expect("path"));
            let b = std::fs::read(&opt).expect("opt");
            std::fs::write(&opt, &b[..b.len() / 3]).expect("write");
            resume_epochs(r, "3")
        },
    ));
    cs.push(case("resume-epochs-0", Fail, &["epochs"], move |d, fx| {
        let r = run_copy(d, &fx.vae2);
        resume_epochs(r, "0")
    }));
}
