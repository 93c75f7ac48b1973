//! Tests of the downloader, on local fixture files.
use std::collections::HashMap;

use super::*;

fn fixture(name: &str, bytes: &[u8]) -> RemoteFile {
    let mut h = Sha256::new();
    h.update(bytes);
    RemoteFile::new(name, bytes.len() as u64, &hex(&h.finalize()))
}

fn source(files: Vec<RemoteFile>, mirrors: Vec<String>) -> Source {
    Source {
        name: "toy".into(),
        mirrors,
        files,
        unpack: Unpack::Keep,
    }
}

#[test]
fn sha256_matches_known_vector() {
    // echo -n abc | sha256sum
    let mut h = Sha256::new();
    h.update(b"abc");
    assert_eq!(
        hex(&h.finalize()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn builtin_sources_list_their_files_and_unknown_names_fail() {
    for name in FETCHABLE {
        let s = super::source(name).expect("known");
        assert!(!s.files.is_empty() && !s.mirrors.is_empty());
        assert!(s.files.iter().all(|f| f.sha256.len() == 64));
    }
    let err = super::source("imagenet").unwrap_err().to_string();
    assert!(
        err.contains("imagenet") && err.contains("fashion-mnist"),
        "{err}"
    );
}

#[test]
fn downloads_verifies_skips_and_falls_back_to_the_next_mirror() {
    let a = b"first file".to_vec();
    let b = vec![7u8; 200_000];
    let good = test_server::serve(HashMap::from([
        ("a.bin".to_string(), a.clone()),
        ("b.bin".to_string(), b.clone()),
    ]));
    // The first mirror has neither file (404), the second has both.
    let empty = test_server::serve(HashMap::new());
    let src = source(
        vec![fixture("a.bin", &a), fixture("b.bin", &b)],
        vec![empty, good],
    );
    let root = tempfile::tempdir().expect("tempdir");
    let mut events = Vec::new();
    let dir = fetch(&src, root.path(), None, &mut |e| {
        events.push(format!("{e:?}"))
    })
    .expect("fetch");
    assert_eq!(std::fs::read(dir.join("a.bin")).expect("a"), a);
    assert_eq!(std::fs::read(dir.join("b.bin")).expect("b"), b);
    assert!(
        events
            .iter()
            .any(|e| e.contains("MirrorFailed") && e.contains("404"))
    );
    // Only the two files: no temporary files left.
    assert_eq!(std::fs::read_dir(&dir).expect("ls").count(), 2);
    // A second fetch verifies and skips, with no server needed.
    let mut downloaded = Vec::new();
    let offline = source(src.files.clone(), vec!["http://127.0.0.1:9/".into()]);
    fetch(&offline, root.path(), None, &mut |e| {
        if let FetchEvent::Done { downloaded: d, .. } = e {
            downloaded.push(d)
        }
    })
    .expect("second fetch");
    assert_eq!(downloaded, vec![false, false]);
}

#[test]
fn corrupt_or_truncated_files_are_refused_and_leave_nothing() {
    let real = b"the real bytes".to_vec();
    let server = test_server::serve(HashMap::from([
        ("corrupt.bin".to_string(), b"the fake bytes".to_vec()),
        ("short:short.bin".to_string(), real.clone()),
    ]));
    let root = tempfile::tempdir().expect("tempdir");
    let src = source(vec![fixture("corrupt.bin", &real)], vec![server.clone()]);
    let err = fetch(&src, root.path(), None, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("SHA-256 mismatch for corrupt.bin"), "{err}");
    assert!(err.contains(&src.files[0].sha256), "{err}");

    let mut announced = real.clone();
    announced.extend(std::iter::repeat_n(0u8, 1000));
    let src = source(vec![fixture("short.bin", &announced)], vec![server]);
    let err = fetch(&src, root.path(), None, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("short.bin"), "{err}");
    let left: Vec<_> = std::fs::read_dir(root.path().join("toy"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_tar_gz_is_unpacked_and_its_archive_removed() {
    let mut tar_bytes = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut tar_bytes, flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        let data = b"batch";
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        t.append_data(&mut header, "inner/data_batch_1.bin", &data[..])
            .expect("append");
        t.into_inner().expect("tar").finish().expect("gz");
    }
    let server = test_server::serve(HashMap::from([("x.tar.gz".to_string(), tar_bytes.clone())]));
    let mut src = source(vec![fixture("x.tar.gz", &tar_bytes)], vec![server]);
    src.unpack = Unpack::TarGz;
    let root = tempfile::tempdir().expect("tempdir");
    let dir = fetch(&src, root.path(), None, &mut |_| {}).expect("fetch");
    assert_eq!(
        std::fs::read(dir.join("inner/data_batch_1.bin")).expect("member"),
        b"batch"
    );
    assert!(!dir.join("x.tar.gz").exists());
    // Already unpacked: nothing to download.
    src.mirrors = vec!["http://127.0.0.1:9/".into()];
    fetch(&src, root.path(), None, &mut |_| {}).expect("second fetch");
}
