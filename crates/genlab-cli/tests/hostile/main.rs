//! The hostile-input corpus: the real `genlab` binary against inputs a careful but hostile user
//! could give it, each made here (truncated, byte-flipped, crafted headers, wrong dtypes, paths
//! that collide with inputs, runs that disagree with themselves).
//!
//! Every case runs in a folder of its own and asserts: the exit code; for a failure, that the
//! last line of stderr is one `error:` line naming the file or value; no panic text; and that
//! no file that existed before (in the case's folder and the shared fixtures) changed or
//! disappeared. The closing summary prints the counts (`cargo test --test hostile -- --nocapture`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a case must end with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Exit 0.
    Ok,
    /// Exit 1 with a one-line error.
    Fail,
    /// Exit 2, clap's usage error.
    Usage,
    /// Exit 0, or exit 1 with a one-line error: mutated inputs that may still be valid.
    OkOrFail,
}

type Setup = Box<dyn Fn(&Path, &Fixtures) -> Vec<OsString> + Send + Sync>;
/// Tensors of a safetensors file: name, shape, f32 values.
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;
/// safetensors metadata.
type Meta = std::collections::HashMap<String, String>;
/// How a test writes a tensor: its values to (dtype, bytes).
type Conv<'a> = &'a dyn Fn(&str, &[f32]) -> (safetensors::Dtype, Vec<u8>);
/// An edit of a file's bytes.
type Edit = Box<dyn Fn(Vec<u8>) -> Vec<u8> + Send + Sync>;

struct Case {
    name: String,
    setup: Setup,
    expect: Expect,
    /// Some of these must appear in the error line (file names, values).
    mentions: Vec<String>,
    env: Vec<(String, String)>,
    /// Files the command is expected to replace (a file genlab made itself).
    may_change: Vec<&'static str>,
    /// A successful resume: it replaces the run's resume pair in `state/`.
    resumes: bool,
}

fn case(
    name: &str,
    expect: Expect,
    mentions: &[&str],
    setup: impl Fn(&Path, &Fixtures) -> Vec<OsString> + Send + Sync + 'static,
) -> Case {
    Case {
        name: name.into(),
        setup: Box::new(setup),
        expect,
        mentions: mentions.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        may_change: Vec::new(),
        resumes: false,
    }
}

impl Case {
    fn may_change(mut self, file: &'static str) -> Self {
        self.may_change.push(file);
        self
    }

    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// A resume that succeeds rewrites the run's own files.
    fn resumes(self) -> Self {
        [
            "config.toml",
            "metrics.jsonl",
            "state.json",
            "weights.safetensors",
            "loss.png",
        ]
        .into_iter()
        .fold(
            Case {
                resumes: true,
                ..self
            },
            Case::may_change,
        )
    }
}

fn args<S: AsRef<std::ffi::OsStr>>(xs: &[S]) -> Vec<OsString> {
    xs.iter().map(|x| x.as_ref().to_os_string()).collect()
}

fn genlab_cmd(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_genlab"));
    c.current_dir(cwd)
        .env("GENLAB_DATA", cwd.join("no-such-data"))
        .env("XDG_CACHE_HOME", cwd.join("no-cache"))
        .env_remove("GENLAB_TEST_PAUSE_AT");
    c
}

/// Runs genlab in `cwd`, asserting success; returns stdout.
fn ok(cwd: &Path, a: &[&str]) -> String {
    let o = genlab_cmd(cwd).args(a).output().expect("run genlab");
    assert!(
        o.status.success(),
        "{a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every file under `dir` with a hash of its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, u64> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(t) = std::fs::symlink_metadata(&p).map(|m| m.file_type()) else {
                continue;
            };
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&p).unwrap_or_default().hash(&mut h);
                out.insert(p, h.finish());
            }
        }
    }
    out
}

mod fixtures;
use fixtures::*;

mod corpus {
    pub mod codes;
    pub mod datasets;
    pub mod folders;
    pub mod images;
    pub mod memory;
    pub mod resume;
    pub mod runs;
    pub mod training;
    pub mod usage;
    pub mod weights;
}

/// Every case, by area (one file each in `corpus/`).
fn corpus() -> Vec<Case> {
    let mut cs = Vec::new();
    corpus::images::cases(&mut cs);
    corpus::codes::cases(&mut cs);
    corpus::weights::cases(&mut cs);
    corpus::runs::cases(&mut cs);
    corpus::datasets::cases(&mut cs);
    corpus::training::cases(&mut cs);
    corpus::memory::cases(&mut cs);
    corpus::folders::cases(&mut cs);
    corpus::resume::cases(&mut cs);
    corpus::usage::cases(&mut cs);
    cs
}

/// The fixture VAE run as an argument.
fn vae_arg(fx: &Fixtures) -> OsString {
    fx.vae.clone().into_os_string()
}

/// `genlab train vae` on a dataset under `data/`, a dry run into `r`.
fn train_vae(dataset: &str) -> Vec<OsString> {
    args(&[
        "train",
        "vae",
        "--dataset",
        dataset,
        "--data-dir",
        "data",
        "--dry-run",
        "-q",
        "--out",
        "r",
    ])
}

#[derive(Default)]
struct Tally {
    clean_errors: usize,
    usage_errors: usize,
    successes: usize,
    failures: Vec<String>,
}

fn got_ok(o: &std::process::Output) -> bool {
    o.status.success()
}

fn run_case(c: &Case, base: &Path, fx: &Fixtures) -> std::result::Result<Expect, String> {
    let dir = base.join(&c.name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let a = (c.setup)(&dir, fx);
    let before = snapshot(&dir);
    let mut cmd = genlab_cmd(&dir);
    cmd.args(&a);
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let code = o.status.code();
    let show = || format!("{a:?} -> exit {code:?}\n{err}");
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        "memory allocation of",
    ] {
        if err.contains(bad) {
            return Err(format!("panic text {bad:?}: {}", show()));
        }
    }
    let after = snapshot(&dir);
    for (p, h) in &before {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        // The lock file is genlab's own record of who holds the folder; a success may replace
        // what the case says it may.
        let own = c.may_change.iter().any(|m| *m == name)
            || (c.resumes && p.parent().is_some_and(|d| d.ends_with("state")));
        if name == ".genlab.lock" || (got_ok(&o) && own) {
            continue;
        }
        match after.get(p) {
            None => return Err(format!("{} disappeared: {}", p.display(), show())),
            Some(h2) if h2 != h => return Err(format!("{} changed: {}", p.display(), show())),
            _ => {}
        }
    }
    let got = match code {
        Some(0) => Expect::Ok,
        Some(1) => Expect::Fail,
        Some(2) => Expect::Usage,
        _ => return Err(format!("unexpected exit: {}", show())),
    };
    let wanted = match (c.expect, got) {
        (Expect::OkOrFail, Expect::Ok | Expect::Fail) => true,
        (e, g) => e == g,
    };
    if !wanted {
        return Err(format!("expected {:?}: {}", c.expect, show()));
    }
    if got == Expect::Fail {
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        if !last.starts_with("error: ") {
            return Err(format!(
                "last stderr line is not one error line: {}",
                show()
            ));
        }
        if err.lines().filter(|l| l.starts_with("error")).count() != 1 {
            return Err(format!("more than one error line: {}", show()));
        }
        let needles: Vec<&String> = c.mentions.iter().collect();
        if !needles.is_empty()
            && c.expect == Expect::Fail
            && !needles.iter().any(|n| last.contains(n.as_str()))
        {
            return Err(format!("error names none of {needles:?}: {}", show()));
        }
    }
    if got == Expect::Usage && !err.contains("error:") && !a.is_empty() {
        return Err(format!("no usage error: {}", show()));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(got)
}

#[test]
fn hostile_corpus() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx_root = tmp.path().join("fixtures");
    std::fs::create_dir_all(&fx_root).expect("mkdir");
    let fx = fixtures(&fx_root);
    let fixtures_before = snapshot(&fx_root);
    let cases = corpus();
    assert!(cases.len() >= 150, "the corpus has {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");

    let base = tmp.path().join("cases");
    let next = AtomicUsize::new(0);
    let tally = Mutex::new(Tally::default());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(c) = cases.get(i) else { break };
                    let r = run_case(c, &base, &fx);
                    let mut t = tally.lock().expect("tally");
                    match r {
                        Ok(Expect::Ok) => t.successes += 1,
                        Ok(Expect::Usage) => t.usage_errors += 1,
                        Ok(_) => t.clean_errors += 1,
                        Err(e) => t.failures.push(format!("{}: {e}", c.name)),
                    }
                }
            });
        }
    });
    let t = tally.into_inner().expect("tally");
    let fixtures_after = snapshot(&fx_root);
    let changed: Vec<_> = fixtures_before
        .iter()
        .filter(|(p, h)| fixtures_after.get(*p) != Some(h))
        .map(|(p, _)| p.display().to_string())
        .collect();
    println!(
        "hostile corpus: {} cases: {} clean errors, {} usage errors, {} correct successes, {} failed",
        cases.len(),
        t.clean_errors,
        t.usage_errors,
        t.successes,
        t.failures.len()
    );
    assert!(changed.is_empty(), "fixture files changed: {changed:?}");
    assert!(
        t.failures.is_empty(),
        "{} of {} cases failed:\n{}",
        t.failures.len(),
        cases.len(),
        t.failures.join("\n\n")
    );
}
