//! A training killed at any moment keeps its last good checkpoint and resumes exactly; a run
//! folder has one writer; SIGTERM stops a training like Ctrl-C; a full disk fails cleanly.
//!
//! The kill tests use genlab's test hook (`GENLAB_TEST_PAUSE_AT=POINT@N`, see
//! `genlab::fsutil::pause_point`): the process stops at exactly that point of its N-th pass and
//! waits, having written `GENLAB_TEST_PAUSE_FILE`; the test then kills it with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// 64 training images in batches of 16 (4 steps an epoch), 2 epochs, tiny VAE.
const PRESET: &str = "[model]\nkind = \"vae\"\nlatent = 2\n\n[train]\nepochs = 2\nbatch_size = 16\nmax_train_images = 64\nmax_test_images = 32\ngrid_images = 4\n";

fn cmd(cwd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_genlab"));
    c.args(args)
        .current_dir(cwd)
        .env("GENLAB_DATA", cwd.join("no-such-data"))
        .env("XDG_CACHE_HOME", cwd.join("no-cache"))
        .env_remove("GENLAB_TEST_PAUSE_AT");
    c
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    cmd(cwd, args).output().expect("run genlab")
}

fn ok(cwd: &Path, args: &[&str]) {
    let o = run(cwd, args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Starts a training that pauses at `point` and waits until it is there.
fn start_paused(cwd: &Path, args: &[&str], point: &str) -> Child {
    let flag = cwd.join(format!("paused-{}", point.replace([':', '@', '.'], "-")));
    let _ = std::fs::remove_file(&flag);
    let mut child = cmd(cwd, args)
        .env("GENLAB_TEST_PAUSE_AT", point)
        .env("GENLAB_TEST_PAUSE_FILE", &flag)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn genlab");
    let start = Instant::now();
    while !flag.exists() {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("{args:?} ended ({status}) before reaching {point}: {err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{point} not reached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn kill9(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

/// Files whose names mark an unfinished atomic write.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().contains(".tmp-") {
                out.push(p);
            }
        }
    }
    out
}

/// The per-epoch losses of a run's `metrics.jsonl` (timings differ between runs).
fn losses(run: &Path) -> Vec<(u64, f64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (
                v["epoch"].as_u64().expect("epoch"),
                v["train_loss"].as_f64().expect("train_loss"),
                v["test"]["loss"].as_f64().expect("test loss"),
            )
        })
        .collect()
}

/// A run's weights as (name, shape, bytes), in name order: the file's header orders its
/// metadata map arbitrarily, so files of equal weights need not be equal bytes.
fn tensors(run: &Path) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(run.join("weights.safetensors")).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut v: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec(), t.data().to_vec()))
        .collect();
    v.sort();
    v
}

fn state(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).expect("state"))
        .expect("json")
}

#[test]
fn a_kill_at_any_checkpoint_moment_resumes_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::write(d.join("p.toml"), PRESET).expect("preset");
    ok(
        d,
        &[
            "train", "vae", "--preset", "p.toml", "-q", "--out", "straight",
        ],
    );
    let want_weights = tensors(&d.join("straight"));
    let want_losses = losses(&d.join("straight"));
    assert_eq!(want_losses.len(), 2);

    // Checkpoints: the initial one (1st), after epoch 1 (2nd), after epoch 2 (3rd).
    for point in [
        "checkpoint-pair@2",
        "before-rename:state.json@2",
        "before-rename:weights.safetensors@2",
        "before-rename:metrics.jsonl@1",
        "epoch-logged@1",
        "epoch-logged@2",
        "checkpoint-pair@3",
        "before-rename:state.json@1",
    ] {
        let out = format!("killed-{}", point.replace([':', '@', '.'], "-"));
        let child = start_paused(
            d,
            &["train", "vae", "--preset", "p.toml", "-q", "--out", &out],
            point,
        );
        kill9(child);
        let o = run(d, &["train", "--resume", &out, "-q"]);
        let run = d.join(&out);
        if !run.join("state.json").is_file() {
            // Killed before the first state.json: nothing to resume, and it says so.
            assert_eq!(o.status.code(), Some(1), "{point}");
            continue;
        }
        assert!(
            o.status.success(),
            "resume after a kill at {point}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            tensors(&run) == want_weights,
            "weights after a kill at {point} and resume differ from the straight run's"
        );
        assert_eq!(losses(&run), want_losses, "metrics after a kill at {point}");
        assert_eq!(state(&run)["status"], "finished", "{point}");
        assert!(
            temp_files(&run).is_empty(),
            "{point}: {:?}",
            temp_files(&run)
        );
        // One resume pair is left in state/.
        let pairs = std::fs::read_dir(run.join("state")).expect("ls").count();
        assert_eq!(
            pairs, 2,
            "{point}: state/ should hold one weights + optimizer pair"
        );
    }
}

#[test]
fn a_run_folder_has_one_writer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::write(d.join("p.toml"), PRESET).expect("preset");
    // A first training, stopped after its first epoch with the folder locked.
    let a = start_paused(
        d,
        &["train", "vae", "--preset", "p.toml", "-q", "--out", "r"],
        "epoch-logged@1",
    );
    let before = std::fs::read(d.join("r/metrics.jsonl")).expect("metrics");
    let resume = run(d, &["train", "--resume", "r", "-q"]);
    let err = String::from_utf8_lossy(&resume.stderr);
    assert_eq!(resume.status.code(), Some(1), "{err}");
    assert!(
        err.contains("another genlab process is writing this folder")
            && err.contains(&format!("pid {}", a.id())),
        "{err}"
    );
    let second = run(
        d,
        &["train", "vae", "--preset", "p.toml", "-q", "--out", "r"],
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("r: "), "{err}");
    assert_eq!(
        std::fs::read(d.join("r/metrics.jsonl")).expect("metrics"),
        before,
        "a refused writer changed the log"
    );
    // The holder dies: its lock goes with it, and the next writer takes the folder.
    kill9(a);
    ok(d, &["train", "--resume", "r", "-q"]);
    assert_eq!(losses(&d.join("r")).len(), 2);
    assert_eq!(state(&d.join("r"))["status"], "finished");
}

#[test]
fn sigterm_checkpoints_like_ctrl_c() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let preset = PRESET.replace("epochs = 2", "epochs = 100000");
    std::fs::write(d.join("p.toml"), preset).expect("preset");
    let child = cmd(
        d,
        &["train", "vae", "--preset", "p.toml", "-q", "--out", "r"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let start = Instant::now();
    while std::fs::read_to_string(d.join("r/metrics.jsonl"))
        .map(|m| m.lines().count() < 2)
        .unwrap_or(true)
    {
        assert!(start.elapsed() < Duration::from_secs(120), "no epochs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let s = state(&d.join("r"));
    assert_eq!(s["status"], "interrupted", "{s}");
    // It resumes from there.
    let done = s["epochs_done"].as_u64().expect("epochs") as usize;
    ok(
        d,
        &[
            "train",
            "--resume",
            "r",
            "-q",
            "--epochs",
            &(done + 1).to_string(),
        ],
    );
    assert_eq!(losses(&d.join("r")).len(), done + 1);
}

/// A 14 MiB tmpfs holds this run's first checkpoint (~10 MiB) but not the second, which
/// briefly needs both resume pairs: the training must fail with one error line naming the file,
/// leave no temporary file and a `state.json` that says `failed` and still resumes (once the
/// run is moved to a disk with room). Needs root (mount); skipped with a printed reason
/// otherwise.
#[test]
fn a_full_disk_fails_cleanly_and_resumes_elsewhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let mnt = d.join("small");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=14m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!("skipped: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let guard = Unmount(mnt.clone());
    std::fs::write(d.join("p.toml"), PRESET).expect("preset");
    let o = run(
        d,
        &[
            "train", "vae", "--preset", "p.toml", "-q", "--out", "small/r",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: small/r/")
            && last.contains("No space left")
            && !err.contains("panicked"),
        "{err}"
    );
    assert!(temp_files(&mnt).is_empty(), "{:?}", temp_files(&mnt));
    assert_eq!(state(&mnt.join("r"))["status"], "failed");
    // Moved to a disk with room, it resumes and finishes.
    let _ = Command::new("cp")
        .args(["-r"])
        .arg(mnt.join("r"))
        .arg(d.join("moved"))
        .status()
        .expect("cp");
    drop(guard);
    ok(d, &["train", "--resume", "moved", "-q"]);
    assert_eq!(losses(&d.join("moved")).len(), 2);
    assert_eq!(state(&d.join("moved"))["status"], "finished");
}

/// A reader that goes away (`genlab ... | head -1`) ends genlab quietly: no panic in `println!`.
#[test]
fn a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let mut child = cmd(d, &["train", "vae", "--dry-run", "--out", "r"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}
