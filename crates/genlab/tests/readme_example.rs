//! README's library example is `examples/train_vae.rs` (which `cargo test` compiles): this keeps
//! the two the same text, so the example a user copies from README is one that builds.

#[test]
fn readme_shows_the_compiled_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../../README.md")).expect("README.md");
    let example = std::fs::read_to_string(root.join("examples/train_vae.rs")).expect("the example");
    let code = &example[example
        .find("use std::sync")
        .expect("the example's first use")..];
    let start = readme
        .find("## Library")
        .expect("README has a Library section");
    let block = readme[start..]
        .split("```rust\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a rust block in README's Library section");
    assert_eq!(
        block, code,
        "README's library example differs from examples/train_vae.rs"
    );
}
