//! The loop's guarantees, checked once for every family: a run stopped mid-epoch (Ctrl-C) and
//! resumed gives the records of an uninterrupted one; a NaN/inf loss stops the run, keeps the
//! last checkpoint and marks it failed; a second run into the same folder is refused.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::*;

use genlab::checkpoint::{RunDir, Status};
use genlab::config::{RunConfig, SrRunConfig};
use genlab::models::{DcganConfig, ModelConfig};
use genlab::train::{Event, Observer, Outcome, Silent, read_records, train, train_sr};
use genlab::{Error, Result};

/// Weights are initialised from burn's process-wide device RNG: the tests of this file take
/// turns, so one's draws never fall between another's seed and its initialisation.
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A family's run, small enough for a unit test: 2 epochs of 4 batches.
enum Case {
    Images(RunConfig),
    Patches(SrRunConfig),
}

fn cases(photos: &Path) -> Vec<(&'static str, Case)> {
    let mut cs: Vec<(&'static str, Case)> = common::image_families(2)
        .into_iter()
        .map(|(n, c)| (n, Case::Images(c)))
        .collect();
    cs.push(("fsrcnn", Case::Patches(common::small_sr(photos, 2))));
    cs
}

impl Case {
    fn train(
        &self,
        run: &RunDir,
        resume: bool,
        stop: &AtomicBool,
        obs: &mut dyn Observer,
    ) -> Result<Outcome> {
        let d = Device::flex();
        match self {
            Case::Images(c) => {
                let data = genlab::data::embedded::mnist_10k().expect("embedded data");
                let mut c = c.clone();
                c.model.set_image(data.shape());
                train(run, &c, resume, &data, &d, stop, obs)
            }
            Case::Patches(c) => train_sr(run, c, resume, &d, stop, obs),
        }
    }

    fn with_lr(&self, lr: f64) -> Case {
        match self {
            Case::Images(c) => {
                let mut c = c.clone();
                c.train.lr = lr;
                Case::Images(c)
            }
            Case::Patches(c) => {
                let mut c = c.clone();
                c.train.lr = lr;
                Case::Patches(c)
            }
        }
    }
}

/// Sets the stop flag after `after` batches, like a Ctrl-C.
struct StopAfter<'a>(usize, &'a AtomicBool);
impl Observer for StopAfter<'_> {
    fn on_event(&mut self, e: Event<'_>) {
        if let Event::Batch { .. } = e {
            self.0 -= 1;
            if self.0 == 0 {
                self.1.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Counts epoch events and checks each carries its record.
#[derive(Default)]
struct Epochs(Vec<String>);
impl Observer for Epochs {
    fn on_event(&mut self, e: Event<'_>) {
        if let Event::Epoch {
            epoch,
            line,
            record,
        } = e
        {
            assert_eq!(record["epoch"], epoch, "{record}");
            self.0.push(line.to_string());
        }
    }
}

fn records(run: &RunDir) -> Vec<serde_json::Value> {
    read_records(run).expect("metrics.jsonl")
}

/// Every number of `a` and `b` agrees to 1e-3 (relative above 1), timings aside: same draws and
/// steps give the same curve up to float summation order (flex's threaded reductions are not
/// bit-reproducible).
fn assert_close(a: &serde_json::Value, b: &serde_json::Value, at: &str, skip: &[&str]) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: {a} vs {b}");
            for (k, v) in x {
                let timing = matches!(
                    k.as_str(),
                    "images_per_sec" | "patches_per_sec" | "elapsed_secs"
                );
                if !timing && !skip.contains(&k.as_str()) {
                    assert_close(v, &y[k], &format!("{at}.{k}"), skip);
                }
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().expect("f64"), y.as_f64().expect("f64"));
            assert!((x - y).abs() <= 1e-3 * x.abs().max(1.0), "{at}: {x} vs {y}");
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn every_family_resumes_exactly_after_a_stop() {
    let _turn = DEVICE_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let photos = common::photos(tmp.path());
    let no = AtomicBool::new(false);
    for (name, case) in cases(&photos) {
        let a = RunDir::new(tmp.path().join(format!("{name}-a")));
        let mut seen = Epochs::default();
        let out = case.train(&a, false, &no, &mut seen).expect(name);
        assert_eq!(out, Outcome::Finished { epochs: 2, step: 8 }, "{name}");
        assert_eq!(seen.0.len(), 2, "{name}");
        assert!(seen.0[1].starts_with("epoch   2"), "{name}: {}", seen.0[1]);
        let ra = records(&a);
        assert_eq!(ra.len(), 2, "{name}");
        assert!(a.loss_plot().is_file(), "{name}");
        let st = a.load_state().expect("state");
        assert_eq!((st.status, st.step), (Status::Finished, 8), "{name}");

        // Stop in the middle of epoch 2, then resume to the end.
        let b = RunDir::new(tmp.path().join(format!("{name}-b")));
        let stop = AtomicBool::new(false);
        let out = case
            .train(&b, false, &stop, &mut StopAfter(6, &stop))
            .expect(name);
        assert_eq!(out, Outcome::Interrupted { epoch: 2, step: 6 }, "{name}");
        let st = b.load_state().expect("state");
        assert_eq!(
            (st.epochs_done, st.batches_done, st.status),
            (1, 2, Status::Interrupted),
            "{name}"
        );
        let again = case
            .train(&b, false, &no, &mut Silent)
            .unwrap_err()
            .to_string();
        assert!(again.contains("--resume"), "{name}: {again}");
        case.train(&b, true, &no, &mut Silent).expect(name);
        let rb = records(&b);
        assert_eq!(rb.len(), 2, "{name}");
        // Every number, test evaluations of batch-norm models included (their running
        // averages are synced before a checkpoint is written).
        let skip: &[&str] = &[];
        for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
            assert_close(x, y, &format!("{name} epoch {}", i + 1), skip);
        }
        // Only the latest resume pair is kept.
        let n = std::fs::read_dir(b.dir.join("state")).expect("ls").count();
        assert_eq!(n, 2, "{name}");
    }
}

#[test]
fn every_family_stops_on_a_non_finite_loss_and_keeps_its_checkpoint() {
    let _turn = DEVICE_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let photos = common::photos(tmp.path());
    for (name, case) in cases(&photos) {
        let r = RunDir::new(tmp.path().join(name));
        let err = case
            .with_lr(1e30)
            .train(&r, false, &AtomicBool::new(false), &mut Silent)
            .unwrap_err();
        assert!(matches!(err, Error::NonFiniteLoss { .. }), "{name}: {err}");
        let st = r.load_state().expect("initial checkpoint kept");
        assert_eq!(st.status, Status::Failed, "{name}");
        assert!(
            r.dir.join(&st.weights).is_file() && r.weights().is_file(),
            "{name}"
        );
        assert!(r.dir.join(&st.optimizer).is_file(), "{name}");
    }
}

/// `train.shards` cuts each batch into shards whose gradients are summed: the training is the
/// same at any number of shards, so a run may also resume with another number (what N
/// data-parallel devices would compute; `genlab::train::shard`). The oracle is the unsharded
/// run of the same seed.
#[test]
fn sharded_steps_train_like_whole_batches_and_resume_with_another_count() {
    let _turn = DEVICE_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let no = AtomicBool::new(false);
    let photos = common::photos(tmp.path());
    for (name, case) in cases(&photos) {
        let Case::Images(base) = case else { continue };
        if !base.model.supports_shards() {
            continue;
        }
        // 64 images in batches of 15: the last batch (4) is short, the shards uneven.
        let with = |shards: usize| {
            let mut c = base.clone();
            c.train.batch_size = 15;
            c.train.shards = shards;
            Case::Images(c)
        };
        let one = RunDir::new(tmp.path().join(format!("{name}-1")));
        with(1).train(&one, false, &no, &mut Silent).expect(name);
        let want = records(&one);
        assert_eq!(want.len(), 2, "{name}");

        let four = RunDir::new(tmp.path().join(format!("{name}-4")));
        with(4).train(&four, false, &no, &mut Silent).expect(name);
        for (i, (x, y)) in want.iter().zip(&records(&four)).enumerate() {
            assert_close(x, y, &format!("{name} 4 shards, epoch {}", i + 1), &[]);
        }

        // In 2 shards, stopped in the middle of epoch 2, then the rest in 3.
        let mixed = RunDir::new(tmp.path().join(format!("{name}-2-3")));
        let stop = AtomicBool::new(false);
        let out = with(2)
            .train(&mixed, false, &stop, &mut StopAfter(7, &stop))
            .expect(name);
        assert_eq!(out, Outcome::Interrupted { epoch: 2, step: 7 }, "{name}");
        with(3).train(&mixed, true, &no, &mut Silent).expect(name);
        for (i, (x, y)) in want.iter().zip(&records(&mixed)).enumerate() {
            assert_close(
                x,
                y,
                &format!("{name} 2 then 3 shards, epoch {}", i + 1),
                &[],
            );
        }
        let saved = mixed.load_config().expect("config");
        assert_eq!(
            saved.train.shards, 3,
            "{name}: the config says how it continued"
        );
    }
}

#[test]
fn shards_are_refused_where_batch_norm_couples_the_images() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let photos = common::photos(tmp.path());
    let mut checked = 0;
    for (name, case) in cases(&photos) {
        let Case::Images(mut c) = case else { continue };
        if c.model.supports_shards() {
            continue;
        }
        c.train.shards = 2;
        let run = RunDir::new(tmp.path().join(name));
        let err = Case::Images(c)
            .train(&run, false, &AtomicBool::new(false), &mut Silent)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.shards") && err.contains("batch norm"),
            "{name}: {err}"
        );
        assert!(!run.dir.exists(), "{name}: nothing written");
        checked += 1;
    }
    assert!(checked >= 2, "the dcgan and vae-gan cases at least");
}

/// A stop (Ctrl-C) that lands on an epoch's last batch finishes that epoch (record and
/// checkpoint) before stopping, and the run resumes from there to the uninterrupted records;
/// a checkpoint that says all of an epoch's batches are done but not its summary (what genlab
/// wrote for such a stop before) resumes too.
#[test]
fn a_stop_on_an_epochs_last_batch_ends_the_epoch_and_resumes() {
    let _turn = DEVICE_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let no = AtomicBool::new(false);
    let photos = common::photos(tmp.path());
    let (name, case) = cases(&photos).into_iter().next().expect("the vae case");
    let a = RunDir::new(tmp.path().join("a"));
    case.train(&a, false, &no, &mut Silent).expect(name);
    let want = records(&a);

    let b = RunDir::new(tmp.path().join("b"));
    let stop = AtomicBool::new(false);
    let out = case
        .train(&b, false, &stop, &mut StopAfter(4, &stop))
        .expect(name);
    assert_eq!(out, Outcome::Interrupted { epoch: 1, step: 4 });
    let st = b.load_state().expect("state");
    assert_eq!((st.epochs_done, st.batches_done), (1, 0));
    assert_eq!(records(&b).len(), 1, "epoch 1 was logged");
    case.train(&b, true, &no, &mut Silent).expect(name);
    for (i, (x, y)) in want.iter().zip(&records(&b)).enumerate() {
        assert_close(x, y, &format!("epoch {}", i + 1), &[]);
    }

    // The old shape: stopped after epoch 1's last batch with its summary not done. Rewind b's
    // state to that (its weights are those after step 4 either way) and drop epoch 2's record.
    let c = RunDir::new(tmp.path().join("c"));
    let stop = AtomicBool::new(false);
    case.train(&c, false, &stop, &mut StopAfter(4, &stop))
        .expect(name);
    let mut st = c.load_state().expect("state");
    let text = std::fs::read_to_string(c.dir.join("metrics.jsonl")).expect("log");
    std::fs::write(c.dir.join("metrics.jsonl"), "").expect("truncate log");
    assert_eq!(text.lines().count(), 1);
    st.epochs_done = 0;
    st.batches_done = 4;
    // The old checkpoint kept the epoch's running sums: rebuild them from epoch 1's record.
    let rec: serde_json::Value = serde_json::from_str(text.trim()).expect("record");
    let n = 64.0;
    st.partial.images = 64;
    for (sum, mean) in [
        ("loss", "train_loss"),
        ("recon", "train_recon"),
        ("kl", "train_kl"),
    ] {
        st.partial.add(sum, rec[mean].as_f64().expect(mean) * n);
    }
    c.save_state(&st).expect("state");
    case.train(&c, true, &no, &mut Silent).expect(name);
    let got = records(&c);
    assert_eq!(got.len(), 2);
    for (i, (x, y)) in want.iter().zip(&got).enumerate() {
        assert_close(x, y, &format!("old shape, epoch {}", i + 1), &[]);
    }
}

/// A folder of `n` distinct 16x16 RGB images.
fn many_photos(dir: &Path, n: u32) -> PathBuf {
    let p = dir.join("many");
    std::fs::create_dir(&p).expect("mkdir");
    for k in 0..n {
        let img = image::RgbImage::from_fn(16, 16, |x, y| {
            image::Rgb([
                (x * 13 + k * 7) as u8,
                (y * 11 + k * 3) as u8,
                (k * 29) as u8,
            ])
        });
        img.save(p.join(format!("{k:03}.png"))).expect("write png");
    }
    p
}

#[test]
fn training_from_a_memory_mapped_pack_matches_the_decoded_folder_exactly() {
    let _turn = DEVICE_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let folder = many_photos(tmp.path(), 45);
    let pack = tmp.path().join("many.glpack");
    genlab::data::pack::pack_folder(&folder, [3, 16, 16], &pack, &mut |_, _| {}).expect("pack");
    let in_memory = genlab::data::image_dir::load(&folder, [3, 16, 16]).expect("decode");
    let mapped = genlab::data::pack::open(&pack).expect("open");
    assert!(mapped.train.pixels.is_mapped());
    let d = Device::flex();
    let no = AtomicBool::new(false);
    let mut c = RunConfig::preset("cifar10-dcgan").expect("preset");
    c.model = ModelConfig::Dcgan(DcganConfig {
        latent: 8,
        g_channels: vec![8, 16],
        d_channels: vec![8, 16],
        image: [3, 16, 16],
        ..DcganConfig::default()
    });
    c.train.epochs = 2;
    c.train.batch_size = 16;
    c.train.grid_images = 4;
    let mut runs = Vec::new();
    for (name, data) in [("memory", &in_memory), ("pack", &mapped)] {
        let run = RunDir::new(tmp.path().join(name));
        // 41 training images: batches of 16, 16 and 9 per epoch, all through the prefetcher.
        let out = train(&run, &c, false, data, &d, &no, &mut Silent).expect(name);
        assert_eq!(out, Outcome::Finished { epochs: 2, step: 6 }, "{name}");
        runs.push(records(&run));
    }
    assert_eq!(runs[0].len(), 2);
    for (i, (x, y)) in runs[0].iter().zip(&runs[1]).enumerate() {
        assert_close(x, y, &format!("epoch {}", i + 1), &[]);
    }
}
