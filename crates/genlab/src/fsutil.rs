//! What genlab may write, and how.
//!
//! - [`write_atomic`]: a temporary file in the same folder, fsynced, then renamed over the
//!   target, so a process killed at any moment leaves either the old file or the new one, never
//!   half of one. [`remove_leftovers`] deletes the temporary files of a killed writer.
//! - [`Outputs`]: the one place that decides whether a command may write a path: never one of
//!   its inputs (also through a link), never inside an input folder, never two outputs to one
//!   name, and a name genlab chose itself (a default) never replaces a file genlab did not make.
//! - [`FolderLock`] and [`claim_new_folder`]: a folder genlab writes over a long time (a run, a
//!   comparison) is locked while it is written, and a new one must be new or empty.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The prefix of the temporary names [`write_atomic`] uses: `.NAME.tmp-PID`.
const TEMP_MARK: &str = ".tmp-";

/// The temporary name used while `path` is being written (same folder, so rename is atomic).
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TEMP_MARK}{}", std::process::id()))
}

/// Whether `name` is a temporary name of [`write_atomic`] (`.NAME.tmp-PID`).
fn is_temp_name(name: &str) -> bool {
    temp_pid(name).is_some()
}

/// The writer's pid in a temporary name of [`write_atomic`] (`.NAME.tmp-PID`), if it is one.
pub(crate) fn temp_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, pid) = name.rsplit_once(TEMP_MARK)?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Deletes the temporary files a killed [`write_atomic`] left in `dir` (not recursive). Call it
/// only while holding the folder's [`FolderLock`], so no live writer's file is taken.
pub fn remove_leftovers(dir: &Path) -> Result<usize> {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_temp_name(&name) && e.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), "remove", err))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(path, "create", e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io(path, "write", e))?;
        f.sync_all().map_err(|e| Error::io(path, "sync", e))?;
        if std::env::var_os(PAUSE_AT).is_some() {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            pause_point(&format!("before-rename:{name}"));
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "rename", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The largest text file genlab reads whole (a config, `state.json`): far beyond any it writes.
pub const MAX_TEXT: u64 = 16 << 20;

/// Files up to this size are read without checking the memory available first.
const SMALL_READ: u64 = 16 << 20;

/// Reads a file whole, refusing one larger than `max` bytes (or than the memory available)
/// before reading it, and anything that is not a regular file (a pipe would block forever).
pub fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "read", e))?;
    if !meta.is_file() {
        return Err(Error::format(
            path,
            if meta.is_dir() {
                "is a folder, expected a file"
            } else {
                "is not a regular file"
            },
        ));
    }
    if meta.len() > max {
        return Err(Error::format(
            path,
            format!(
                "{} bytes; genlab reads files of this kind up to {}",
                meta.len(),
                crate::memory::human(u128::from(max))
            ),
        ));
    }
    // Small reads skip the check: it reads /proc and cgroup files, which would cost more than
    // reading a thumbnail (packing reads hundreds of thousands of them).
    if meta.len() > SMALL_READ {
        crate::memory::ensure(
            format!("reading {}", path.display()),
            u128::from(meta.len()),
        )?;
    }
    std::fs::read(path).map_err(|e| Error::io(path, "read", e))
}

/// [`read_capped`] of a UTF-8 text file of at most [`MAX_TEXT`] bytes.
pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_capped(path, MAX_TEXT)?)
        .map_err(|e| Error::format(path, format!("not UTF-8 text: {e}")))
}

/// Creates a folder and its parents, with the path in the error.
pub fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io(path, "create folder", e))
}

/// The test hook's environment variable (see [`pause_point`]).
const PAUSE_AT: &str = "GENLAB_TEST_PAUSE_AT";

/// Test hook: with `GENLAB_TEST_PAUSE_AT=NAME` in the environment, the process stops at the
/// named point and waits there forever: `checkpoint-pair` (a checkpoint's new resume pair
/// written, its `state.json` not yet), `before-rename:FILE` (any atomic write of FILE, its
/// temporary file complete, not yet renamed), `epoch-logged` (an epoch's line in `metrics.jsonl`,
/// its checkpoint not yet). `NAME@N` pauses at the N-th time the point is reached. It does so
/// after creating the file `$GENLAB_TEST_PAUSE_FILE`, so a test can kill it at exactly that
/// moment. Costs one environment lookup per call when unset.
pub fn pause_point(name: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let Some(want) = std::env::var_os(PAUSE_AT) else {
        return;
    };
    let want = want.to_string_lossy();
    let (point, nth) = match want.rsplit_once('@') {
        Some((p, n)) => (p, n.parse::<usize>().unwrap_or(1)),
        None => (want.as_ref(), 1),
    };
    if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        if let Some(f) = std::env::var_os("GENLAB_TEST_PAUSE_FILE") {
            let _ = std::fs::write(f, name);
        }
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Where an output's name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The user named it (`-o FILE`, or a file in a `-o FOLDER` they named): an existing file
    /// there is replaced, unless it is an input.
    Named,
    /// genlab chose it (a default such as `IMAGE.glz` next to the image): an existing file is
    /// replaced only if genlab made it (checked by content), otherwise refused.
    Derived,
}

/// An input's identity: its canonical path, and (device, inode) where the platform has them,
/// so a hard link or a symlink to an input is recognised as the input.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileId {
    canonical: PathBuf,
    inode: Option<(u64, u64)>,
}

impl FileId {
    fn of(path: &Path) -> Option<Self> {
        let canonical = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            Some((meta.dev(), meta.ino()))
        };
        #[cfg(not(unix))]
        let inode = {
            let _ = meta;
            None
        };
        Some(Self { canonical, inode })
    }
}

/// The absolute, normalised form of a path that may not exist yet: its deepest existing
/// ancestor canonicalised (links resolved), then the rest, which must be plain names.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut rest = Vec::new();
    let mut p = path;
    loop {
        let here = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        if let Ok(c) = std::fs::canonicalize(here) {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return Some(out);
        }
        match p.components().next_back()? {
            Component::Normal(n) => rest.push(n.to_os_string()),
            _ => return None,
        }
        p = p.parent()?;
    }
}

/// The files a command reads and writes, checked before it writes anything: see the module
/// documentation for the rules. Register every input first, then claim each output.
#[derive(Debug, Default)]
pub struct Outputs {
    inputs: Vec<(FileId, PathBuf)>,
    input_dirs: Vec<(PathBuf, PathBuf)>,
    claimed: BTreeMap<PathBuf, (PathBuf, Option<PathBuf>)>,
}

impl Outputs {
    /// No inputs, no outputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a file (or folder) the command reads. A folder's whole tree is protected.
    pub fn input(&mut self, path: &Path) {
        if let Some(id) = FileId::of(path) {
            if path.is_dir() {
                self.input_dirs
                    .push((id.canonical.clone(), path.to_path_buf()));
            }
            self.inputs.push((id, path.to_path_buf()));
        }
    }

    /// Claims `path` as an output (made from `from`, when it is made from one input, for the
    /// message of a name collision). Errors, naming the path, when:
    /// its folder does not exist; it is a folder; it is an input or inside an input folder; it
    /// was already claimed by this command; or it is `Derived`, exists, and genlab did not make it.
    pub fn claim(&mut self, path: &Path, origin: Origin, from: Option<&Path>) -> Result<()> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.is_dir()
        {
            return Err(Error::Refused {
                path: path.to_path_buf(),
                msg: format!("output folder {} does not exist", parent.display()),
            });
        }
        self.claim_new_tree(path, origin, from)
    }

    /// [`Outputs::claim`] for an output whose folders the command creates (a folder of
    /// outputs mirroring an input folder's tree): the parent need not exist yet.
    pub fn claim_new_tree(
        &mut self,
        path: &Path,
        origin: Origin,
        from: Option<&Path>,
    ) -> Result<()> {
        let refuse = |msg: String| {
            Err(Error::Refused {
                path: path.to_path_buf(),
                msg,
            })
        };
        if path.is_dir() {
            return refuse("is a folder; name an output file".into());
        }
        // A device, pipe or socket is never replaced (renaming over /dev/null would delete it).
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return refuse("is not a regular file; name an output file".into());
        }
        let Some(norm) = normalise(path) else {
            return refuse("cannot resolve this output path".into());
        };
        if let Some(id) = FileId::of(path)
            && let Some((_, input)) = self.inputs.iter().find(|(i, _)| {
                i.canonical == id.canonical || (i.inode.is_some() && i.inode == id.inode)
            })
        {
            return refuse(format!(
                "is an input of this command ({}); genlab never overwrites its inputs: choose another output name",
                input.display()
            ));
        }
        if let Some((_, dir)) = self.input_dirs.iter().find(|(d, _)| norm.starts_with(d)) {
            return refuse(format!(
                "is inside the input folder {}; write the outputs to another folder",
                dir.display()
            ));
        }
        if let Some((first, first_from)) = self.claimed.get(&norm) {
            let whence = |f: &Option<PathBuf>| {
                f.as_ref()
                    .map(|p| format!(" (from {})", p.display()))
                    .unwrap_or_default()
            };
            return refuse(format!(
                "two outputs of this command would have this name: {}{} and this one{}; rename one of the inputs",
                first.display(),
                whence(first_from),
                whence(&from.map(Path::to_path_buf))
            ));
        }
        if origin == Origin::Derived && path.exists() && !made_by_genlab(path) {
            return refuse(
                "exists, and genlab did not make it; name the output with -o (an existing file named there is replaced)"
                    .into(),
            );
        }
        self.claimed
            .insert(norm, (path.to_path_buf(), from.map(Path::to_path_buf)));
        Ok(())
    }
}

/// Whether the file at `path` is one genlab wrote, as far as its content tells: a latent code
/// (`GENLABZ1`, `GENLABZ2`) or a dataset pack (`GENLABP1`). Images carry no such mark, so an image genlab
/// did not name is never replaced.
pub fn made_by_genlab(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && (&head == crate::codec::MAGIC
            || &head == crate::codec::MAGIC_LABELLED
            || &head == crate::data::pack::MAGIC)
}

/// The lock file inside a locked folder.
pub const LOCK_FILE: &str = ".genlab.lock";

/// An exclusive lock on a folder genlab is writing (a run folder, a comparison), held until
/// dropped. It is an OS file lock on `DIR/.genlab.lock`, which also records the holder (pid,
/// host, start time) for the message a second writer gets. The OS releases it when its process
/// dies however it dies, so a lock left by a killed process is taken over by the next writer.
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

impl FolderLock {
    /// Locks `dir` (which must exist), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let p = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .map_err(|e| Error::io(&p, "open lock file", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::Locked {
                    path: dir.to_path_buf(),
                    msg: format!(
                        "another genlab process is writing this folder ({}); wait for it to finish or stop it",
                        if holder.is_empty() {
                            "holder unknown"
                        } else {
                            holder
                        }
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&p, "lock", e)),
        }
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let who = format!(
            "pid {} on host {}, since unix time {since}\n",
            std::process::id(),
            host_name()
        );
        file.set_len(0)
            .and_then(|_| file.write_all(who.as_bytes()))
            .map_err(|e| Error::io(&p, "write", e))?;
        Ok(Self { _file: file })
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Creates (or takes) `dir` as a new output folder and locks it. It must not exist, or be an
/// empty folder: genlab never writes its files among someone else's. `what` names the kind of
/// folder in the message, `hint` says what to do instead.
pub fn claim_new_folder(dir: &Path, hint: &str) -> Result<FolderLock> {
    claim_folder(dir, hint, false)
}

/// Like [`claim_new_folder`], but a folder genlab made before (it has genlab's lock file) is
/// taken again as it is: how `genlab compare` continues its own earlier comparison.
pub fn claim_own_folder(dir: &Path, hint: &str) -> Result<FolderLock> {
    claim_folder(dir, hint, true)
}

fn claim_folder(dir: &Path, hint: &str, reuse_own: bool) -> Result<FolderLock> {
    let ours = dir.join(LOCK_FILE).is_file();
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Refused {
            path: dir.to_path_buf(),
            msg: "exists and is not a folder".into(),
        });
    }
    create_dir_all(dir)?;
    let lock = FolderLock::acquire(dir)?;
    let others = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, "list", e))?
        .flatten()
        .filter(|e| e.file_name() != LOCK_FILE)
        .count();
    if others > 0 && !(reuse_own && ours) {
        return Err(Error::Refused {
            path: dir.to_path_buf(),
            msg: format!(
                "is not empty ({others} entries); genlab writes a new folder only into a new or empty one: {hint}"
            ),
        });
    }
    Ok(lock)
}

/// Whether `rel` is a plain relative path that stays inside its base folder (no `..`, no root,
/// no prefix): what a path read from a file inside a run folder must be.
pub fn stays_inside(rel: &str) -> bool {
    let p = Path::new(rel);
    !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.txt");
        super::write_atomic(&p, b"one").expect("write");
        super::write_atomic(&p, b"two").expect("overwrite");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let n = std::fs::read_dir(dir.path()).expect("ls").count();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_folder_has_one_lock_holder_and_a_dead_holder_releases_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = super::FolderLock::acquire(dir.path()).expect("first");
        let err = super::FolderLock::acquire(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("another genlab process")
                && err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        super::FolderLock::acquire(dir.path()).expect("free again once dropped");
    }

    #[test]
    fn a_new_folder_must_be_new_or_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("run");
        drop(super::claim_new_folder(&d, "hint").expect("new"));
        drop(super::claim_new_folder(&d, "hint").expect("empty but for the lock"));
        std::fs::write(d.join("notes.txt"), b"mine").expect("write");
        let err = super::claim_new_folder(&d, "choose another")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not empty") && err.contains("choose another"),
            "{err}"
        );
        // A folder genlab locked before may be taken again as it is; a user's may not.
        drop(super::claim_own_folder(&d, "hint").expect("genlab's own folder"));
        let user = dir.path().join("user");
        std::fs::create_dir_all(&user).expect("mkdir");
        std::fs::write(user.join("a.md"), b"mine").expect("write");
        assert!(super::claim_own_folder(&user, "hint").is_err());
    }

    #[test]
    fn outputs_never_replace_inputs_or_collide() {
        use super::{Origin, Outputs};
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let input = d.join("in.png");
        std::fs::write(&input, b"input").expect("write");
        std::fs::hard_link(&input, d.join("hard.png")).expect("link");
        std::fs::create_dir_all(d.join("photos/sub")).expect("mkdir");
        let mut o = Outputs::new();
        o.input(&input);
        o.input(&d.join("photos"));
        let refused = |o: &mut Outputs, p: &std::path::Path, origin| {
            o.claim(p, origin, None).unwrap_err().to_string()
        };
        assert!(refused(&mut o, &input, Origin::Named).contains("is an input"));
        assert!(refused(&mut o, &d.join("hard.png"), Origin::Named).contains("is an input"));
        assert!(refused(&mut o, &d.join("photos/x.png"), Origin::Named).contains("input folder"));
        assert!(
            o.claim_new_tree(&d.join("photos/sub/new/x.png"), Origin::Named, None)
                .unwrap_err()
                .to_string()
                .contains("input folder")
        );
        assert!(refused(&mut o, &d.join("nope/x.png"), Origin::Named).contains("does not exist"));
        o.claim(&d.join("out.png"), Origin::Named, None)
            .expect("free name");
        assert!(refused(&mut o, &d.join("./out.png"), Origin::Named).contains("two outputs"));
        // A name genlab derives never replaces a file it did not make.
        std::fs::write(d.join("a.glz"), b"user notes").expect("write");
        assert!(refused(&mut o, &d.join("a.glz"), Origin::Derived).contains("did not make"));
        std::fs::write(d.join("b.glz"), crate::codec::to_bytes(&[1.0], None)).expect("write");
        o.claim(&d.join("b.glz"), Origin::Derived, None)
            .expect("genlab's own code file");
        // Devices are never replaced.
        let dev = std::path::Path::new("/dev/null");
        if dev.exists() {
            assert!(refused(&mut o, dev, Origin::Named).contains("not a regular file"));
        }
    }

    #[test]
    fn leftovers_of_killed_writes_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for f in [
            ".state.json.tmp-123",
            ".weights.safetensors.tmp-9",
            "keep.tmp-12",
            ".x.tmp-abc",
        ] {
            std::fs::write(d.join(f), b"x").expect("write");
        }
        assert_eq!(super::remove_leftovers(d).expect("clean"), 2);
        assert!(d.join("keep.tmp-12").exists() && d.join(".x.tmp-abc").exists());
    }

    #[test]
    fn relative_paths_that_stay_inside() {
        assert!(super::stays_inside("state/weights-1.safetensors"));
        for bad in ["", "../x", "state/../../x", "/etc/passwd"] {
            assert!(!super::stays_inside(bad), "{bad}");
        }
    }

    #[test]
    fn missing_folder_is_an_error_naming_the_file() {
        let err = super::write_atomic(std::path::Path::new("/nonexistent-dir/x.png"), b"x")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/nonexistent-dir/x.png: create"), "{err}");
    }
}
