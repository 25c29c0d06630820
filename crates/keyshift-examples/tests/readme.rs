//! keyshift-client's README shows `examples/readme_service.rs` verbatim, so the snippet
//! users copy is the one `cargo clippy --all-targets` compiles.

#[test]
fn the_readme_snippet_is_the_compiled_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../keyshift-client/README.md")).expect("README");
    let example = std::fs::read_to_string(root.join("examples/readme_service.rs")).expect("example");
    let marker =
        "<!-- the same as crates/keyshift-examples/examples/readme_service.rs (a test checks) -->\n```rust\n";
    let start = readme.find(marker).expect("the marker before the snippet") + marker.len();
    let len = readme[start..].find("```\n").expect("the end of the snippet");
    assert_eq!(
        &readme[start..start + len],
        example,
        "copy examples/readme_service.rs into the README"
    );
}
