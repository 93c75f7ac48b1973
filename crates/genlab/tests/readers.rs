//! Property tests of every reader of user files: IDX (raw and gzip), CIFAR-10 batches, images
//! (PNG, JPEG, BMP), safetensors weights, config TOML, `.glz` codes, `state.json` and
//! `metrics.jsonl`. Each starts from a valid file and mutates it (flipped and overwritten bytes,
//! header fields set to extreme values, truncation, appended garbage), thousands of times per
//! reader. A reader must return a value or a one-line error, never panic; and no read may
//! allocate more than a bound that does not grow with what a header claims (checked by a
//! counting global allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Counts live heap bytes and their peak, so a test can bound what one read allocates.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded to the system allocator with the caller's layout.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The most one read of a small mutated file may allocate: the JPEG decoder's cap on decoded
/// pixels (512 MiB, the image crate's default for PNG and BMP too) plus slack; nothing a
/// header claims beyond that may be allocated.
const READ_BUDGET: usize = 600 << 20;

/// Runs `read` and fails the case when it allocated more than [`READ_BUDGET`] at its peak.
fn bounded<T>(read: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = read();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    prop_assert!(peak <= READ_BUDGET, "one read allocated {peak} bytes");
    Ok(out)
}

/// A reader's error must be one line that names the file.
fn one_line(e: &genlab::Error, name: &str) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    prop_assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
    prop_assert!(
        msg.contains(name)
            || matches!(
                e,
                genlab::Error::Config { .. } | genlab::Error::Memory { .. }
            ),
        "error does not name {name}: {msg}"
    );
    Ok(())
}

/// Mutations of a valid file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    /// Four bytes set to an extreme value (a header field: a count, a size, an offset).
    Word(usize, u32),
    Truncate(usize),
    Append(Vec<u8>),
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1..=255u8).prop_map(|(p, x)| Mutation::Flip(p, x)),
        2 => (any::<usize>(), prop_oneof![Just(0u32), Just(1), Just(u32::MAX), Just(0x7fff_ffff), Just(0x8000_0000), any::<u32>()])
            .prop_map(|(p, v)| Mutation::Word(p, v)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(p, b)| Mutation::Insert(p, b)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..6)
}

/// Applies mutations; positions are taken modulo the current length, and mostly fall in the
/// first 64 bytes (the headers) for half of them.
fn mutate(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        if b.is_empty() {
            break;
        }
        let at = |p: usize, n: usize| {
            if p.is_multiple_of(2) {
                (p / 2) % n.min(64)
            } else {
                (p / 2) % n
            }
        };
        match m {
            Mutation::Flip(p, x) => {
                let i = at(*p, b.len());
                b[i] ^= x;
            }
            Mutation::Word(p, v) => {
                let i = at(*p, b.len());
                for (k, byte) in v.to_le_bytes().iter().enumerate() {
                    if let Some(x) = b.get_mut(i + k) {
                        *x = *byte;
                    }
                }
            }
            Mutation::Truncate(p) => {
                let n = p % b.len();
                b.truncate(n);
            }
            Mutation::Append(x) => b.extend(x),
            Mutation::Insert(p, x) => {
                let i = p % b.len();
                b.splice(i..i, x.iter().copied());
            }
        }
    }
    b
}

/// A runner with a fixed seed, so CI sees the same inputs every time: a failure is
/// reproducible from the printed case. `GENLAB_PROPTEST_SEED=N` explores other inputs.
fn runner(cases: u32) -> TestRunner {
    let seed: u64 = std::env::var("GENLAB_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261201);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..12].copy_from_slice(&cases.to_le_bytes());
    let rng = proptest::test_runner::TestRng::from_seed(
        proptest::test_runner::RngAlgorithm::ChaCha,
        &key,
    );
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        rng,
    )
}

fn idx_images(n: u32, h: u32, w: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        b.extend(d.to_be_bytes());
    }
    b.extend((0..n * h * w).map(|i| (i * 37 % 256) as u8));
    b
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gz");
    e.finish().expect("gz")
}

fn encode(f: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| {
        image::Rgb([(x * 10) as u8, (y * 15) as u8, ((x * y) % 256) as u8])
    });
    let mut b = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut b), f)
        .expect("encode");
    b
}

/// Mutated IDX image and label files, raw and gzip-compressed (read from disk, as the datasets
/// are).
fn idx_files(dir: &Path) {
    let images = idx_images(3, 5, 4);
    let mut labels = vec![0, 0, 8, 1];
    labels.extend(3u32.to_be_bytes());
    labels.extend([1, 7, 9]);
    let mut r = runner(4000);
    r.run(&(mutations(), 0..4usize), |(ms, which)| {
        let (seed, ndims) = match which {
            0 => (images.clone(), 3),
            1 => (labels.clone(), 1),
            2 => (gzip(&images), 3),
            _ => (gzip(&labels), 1),
        };
        let p = dir.join("file-idx");
        std::fs::write(&p, mutate(seed, &ms)).expect("write");
        let out = bounded(|| {
            genlab::data::idx::read_maybe_gz(&p)
                .and_then(|b| genlab::data::idx::parse_idx(&b, ndims, &p))
        })?;
        match out {
            Ok(a) => prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>()),
            Err(e) => one_line(&e, "file-idx")?,
        }
        Ok(())
    })
    .expect("IDX reader");
}

fn cifar_batches() {
    let mut seed = Vec::new();
    for i in 0..3u8 {
        seed.push(i);
        seed.extend((0..3072u32).map(|j| (j % 256) as u8));
    }
    runner(3000)
        .run(&mutations(), |ms| {
            let p = Path::new("data_batch_1.bin");
            let b = mutate(seed.clone(), &ms);
            match bounded(|| genlab::data::cifar::parse_batch(&b, p))? {
                Ok((px, lb)) => {
                    prop_assert_eq!(px.len(), lb.len() * 3072);
                    prop_assert!(lb.iter().all(|&l| l < 10));
                }
                Err(e) => one_line(&e, "data_batch_1.bin")?,
            }
            Ok(())
        })
        .expect("CIFAR reader");
}

fn images() {
    let seeds = [
        encode(image::ImageFormat::Png),
        encode(image::ImageFormat::Jpeg),
        encode(image::ImageFormat::Bmp),
    ];
    runner(5000)
        .run(&(mutations(), 0..3usize), |(ms, which)| {
            let b = mutate(seeds[which].clone(), &ms);
            let p = Path::new("photo.img");
            // The header's size (what the studio checks before decoding an upload) is read
            // without a panic, and is the size of the image decoded.
            let declared = bounded(|| genlab::image_io::declared_size(&b))?;
            match bounded(|| genlab::image_io::decode_image(&b, p))? {
                Ok(img) => {
                    prop_assert!(img.width() > 0 && img.height() > 0);
                    if let Some(d) = declared {
                        prop_assert_eq!(d, (img.width(), img.height()));
                    }
                }
                Err(e) => one_line(&e, "photo.img")?,
            }
            Ok(())
        })
        .expect("image reader");
}

/// Dataset packs (`data::pack`): a 14-image labelled pack, mutated. An open pack's sets must
/// be consistent (sizes, labels within the classes) and every image readable; `verify` either
/// passes or says what is wrong on one line.
fn packs(dir: &Path) {
    let photos = dir.join("pack-src");
    for (i, class) in ["cat", "dog"].iter().enumerate() {
        std::fs::create_dir_all(photos.join(class)).expect("mkdir");
        for k in 0..7u8 {
            image::RgbImage::from_pixel(6, 5, image::Rgb([k * 30, i as u8 * 90, 7]))
                .save(photos.join(class).join(format!("{k}.png")))
                .expect("save");
        }
    }
    let seed_path = dir.join("seed.glpack");
    genlab::data::pack::pack_folder(&photos, [3, 4, 4], &seed_path, &mut |_, _| {}).expect("pack");
    let seed = std::fs::read(&seed_path).expect("read");
    let p = dir.join("p.glpack");
    runner(2000)
        .run(&mutations(), |ms| {
            std::fs::write(&p, mutate(seed.clone(), &ms)).expect("write");
            match bounded(|| genlab::data::pack::open(&p))? {
                Ok(d) => {
                    for set in [&d.train, &d.test] {
                        prop_assert!(!set.is_empty());
                        prop_assert_eq!(set.pixels.len(), set.len() * set.image_len());
                        let sum: u64 = (0..set.len())
                            .map(|i| set.image(i).iter().map(|&v| u64::from(v)).sum::<u64>())
                            .sum();
                        std::hint::black_box(sum);
                        if let Some(l) = &set.labels {
                            prop_assert_eq!(l.len(), set.len());
                            prop_assert!(l.iter().all(|&c| usize::from(c) < d.classes.len()));
                        }
                    }
                }
                Err(e) => one_line(&e, "p.glpack")?,
            }
            if let Err(e) = bounded(|| genlab::data::pack::verify(&p))? {
                one_line(&e, "p.glpack")?;
            }
            Ok(())
        })
        .expect("pack reader");
}

fn weights(dir: &Path) {
    let cfg = genlab::models::VaeConfig {
        hidden: vec![6],
        latent: 2,
        image: [1, 4, 4],
        ..Default::default()
    };
    let device = Device::flex();
    let p = dir.join("weights.safetensors");
    genlab::checkpoint::save_weights(&cfg.init(&device), &p, "vae", 0).expect("save");
    let seed = std::fs::read(&p).expect("read");
    runner(3000)
        .run(&mutations(), |ms| {
            let b = mutate(seed.clone(), &ms);
            let out = bounded(|| genlab::checkpoint::load_weights_bytes(cfg.init(&device), b, &p))?;
            if let Err(e) = out {
                one_line(&e, "weights.safetensors")?;
            }
            Ok(())
        })
        .expect("weights reader");
}

/// Text mutations: characters that matter to TOML and JSON, inserted, replaced or deleted.
fn text_edits() -> impl Strategy<Value = Vec<(usize, Option<char>)>> {
    let ch = prop_oneof![
        Just('['),
        Just(']'),
        Just('{'),
        Just('}'),
        Just('='),
        Just('"'),
        Just(','),
        Just('\n'),
        Just('#'),
        Just('-'),
        Just('.'),
        Just('9'),
        Just('0'),
        Just('e'),
        Just(':'),
        Just('\\'),
        Just('\u{0}'),
        Just('é'),
        any::<char>(),
    ];
    proptest::collection::vec((any::<usize>(), proptest::option::of(ch)), 1..6)
}

fn edit_text(text: &str, edits: &[(usize, Option<char>)]) -> String {
    let mut cs: Vec<char> = text.chars().collect();
    for (p, c) in edits {
        if cs.is_empty() {
            break;
        }
        let i = p % cs.len();
        match c {
            Some(c) if p.is_multiple_of(3) => cs[i] = *c,
            Some(c) => cs.insert(i, *c),
            None => {
                cs.remove(i);
            }
        }
    }
    cs.into_iter().collect()
}

fn configs() {
    let seeds: Vec<String> = [
        "mnist-vae",
        "mnist-conv-vae",
        "mnist-dcgan",
        "fashion-vae-gan",
        "mnist-classifier",
    ]
    .iter()
    .map(|n| genlab::RunConfig::preset(n).expect("preset").to_toml())
    .chain([genlab::SrRunConfig::default().to_toml()])
    .collect();
    runner(5000)
        .run(&(text_edits(), 0..6usize), |(edits, which)| {
            let text = edit_text(&seeds[which], &edits);
            let p = Path::new("preset.toml");
            let out = bounded(|| {
                if which == 5 {
                    genlab::SrRunConfig::from_toml(&text, p).and_then(|c| c.validate())
                } else {
                    genlab::RunConfig::from_toml(&text, p).and_then(|c| c.validate())
                }
            })?;
            if let Err(e) = out {
                one_line(&e, "")?;
                prop_assert!(!e.to_string().contains('\n'));
            }
            Ok(())
        })
        .expect("config reader");
}

fn codes() {
    // Plain and labelled (a cVAE's) codes, mutated alike.
    for label in [None, Some(3)] {
        let seed = genlab::codec::to_bytes(&[0.25, -1.5, 3.0], label);
        runner(1500)
            .run(&mutations(), |ms| {
                let b = mutate(seed.clone(), &ms);
                match bounded(|| genlab::codec::parse(&b, Path::new("c.glz")))? {
                    Ok(c) => prop_assert!(!c.z.is_empty() && c.z.iter().all(|v| v.is_finite())),
                    Err(e) => one_line(&e, "c.glz")?,
                }
                Ok(())
            })
            .expect("code reader");
    }
}

fn run_files(dir: &Path) {
    let run = genlab::RunDir::new(dir.join("run"));
    std::fs::create_dir_all(run.dir.join("state")).expect("mkdir");
    let mut st = genlab::checkpoint::TrainState::new("vae");
    st.step = 12;
    st.epochs_done = 1;
    st.batches_done = 2;
    st.weights = "state/weights-00000012.safetensors".into();
    st.optimizer = "state/optimizer-00000012.bpk".into();
    st.partial.add("loss", 3.5);
    let state = serde_json::to_string_pretty(&st).expect("json");
    let metrics = concat!(
        r#"{"epoch":1,"step":10,"train_loss":200.5,"train_recon":190.0,"train_kl":10.5,"test":{"images":32,"loss":180.0,"recon":170.0,"kl":10.0,"neg_elbo":180.0,"mse":0.05,"psnr":13.0},"images_per_sec":5000.0,"elapsed_secs":1.5}"#,
        "\n",
        r#"{"epoch":2,"step":20,"train_loss":150.5,"train_recon":140.0,"train_kl":10.5,"test":{"images":32,"loss":140.0,"recon":130.0,"kl":10.0,"neg_elbo":140.0,"mse":0.04,"psnr":14.0},"images_per_sec":5000.0,"elapsed_secs":3.0}"#,
        "\n"
    );
    runner(5000)
        .run(&(text_edits(), any::<bool>()), |(edits, is_state)| {
            if is_state {
                std::fs::write(run.state(), edit_text(&state, &edits)).expect("write");
                match bounded(|| run.load_state())? {
                    Ok(s) => {
                        for f in [&s.weights, &s.optimizer] {
                            prop_assert!(f.is_empty() || f.starts_with("state/"));
                            prop_assert!(f.is_empty() || genlab::fsutil::stays_inside(f));
                        }
                    }
                    Err(e) => one_line(&e, "state.json")?,
                }
            } else {
                std::fs::write(run.metrics(), edit_text(metrics, &edits)).expect("write");
                let out =
                    bounded(|| genlab::train::read_records::<genlab::train::EpochRecord>(&run))?;
                if let Err(e) = out {
                    one_line(&e, "metrics.jsonl")?;
                }
            }
            Ok(())
        })
        .expect("run-folder readers");
}

/// One test, so that the allocation counter sees one reader at a time.
#[test]
fn every_reader_survives_mutated_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    idx_files(tmp.path());
    cifar_batches();
    images();
    packs(tmp.path());
    weights(tmp.path());
    configs();
    codes();
    run_files(tmp.path());
}
