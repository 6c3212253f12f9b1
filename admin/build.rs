//! Re-embeds the web UI when `web/dist` changes: Vite's hashed file names are new files, which
//! rust-embed's generated code cannot tell cargo about by itself.

fn main() {
    println!("cargo:rerun-if-changed=../web/dist");
    println!("cargo:rerun-if-changed=build.rs");
}
