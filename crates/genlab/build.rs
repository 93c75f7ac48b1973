//! Compiles every preset in `configs/` into the library: `$OUT_DIR/presets.rs` is the list
//! `config::PRESETS` includes, so a new preset is a new TOML file and nothing else.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time, not with env!: a compiled build script can be reused for a checkout
    // at another path (a shared target directory), and must read that checkout's presets.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("configs");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("crates/genlab/configs is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            p.file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let mut out = String::from("&[\n");
    for n in &names {
        let path = dir.join(format!("{n}.toml"));
        println!("cargo::rerun-if-changed={}", path.display());
        writeln!(
            out,
            "    ({n:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("presets.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
