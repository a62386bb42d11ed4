//! Link options for the `strait-proxy` binary only (measured in crates/proxy/benches/NOTES.md,
//! "Memory (RSS)"). Both keep the binary position-independent: ASLR is unchanged.
//!
//! 1. `-z pack-relative-relocs` (RELR) stores the relative relocations as a bitmap instead of one
//!    24-byte `Elf64_Rela` each: `.rela.dyn` shrinks from ~800 KB to ~10 KB, which the dynamic
//!    loader no longer reads through at start-up. Needs lld (rustc's default linker on x86_64
//!    Linux since 1.90) or GNU ld >= 2.38 (older ones ignore the option), and glibc >= 2.36 to
//!    run: the linker records a `GLIBC_ABI_DT_RELR` version need, so an older glibc refuses to
//!    start the binary with a clear message instead of misbehaving.
//! 2. `--symbol-ordering-file=hot-functions.txt` (lld only) puts the functions a proxy actually
//!    runs next to each other at the start of `.text`, so the code an idle proxy touched spans
//!    few 64 KB fault-around windows. Names the linker does not find are skipped silently: a
//!    stale list (regenerate it with `hot-functions.sh`) costs memory, never correctness.
//!
//! `STRAIT_PROXY_NO_RELR=1` / `STRAIT_PROXY_NO_ORDER=1` turn them off (other toolchains, A/B
//! measurements).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=hot-functions.txt");
    for var in ["STRAIT_PROXY_NO_RELR", "STRAIT_PROXY_NO_ORDER", "RUSTC_LINKER"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && std::env::var_os("STRAIT_PROXY_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("hot-functions.txt");
    // The names come from a release build; a debug build has other functions (and no use for it).
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if release
        && order.is_file()
        && std::env::var_os("STRAIT_PROXY_NO_ORDER").is_none()
        && links_with_rust_lld()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc links this target with its bundled lld: the default for
/// `x86_64-unknown-linux-gnu` from Rust 1.90 on, unless a linker is configured. GNU ld rejects
/// `--symbol-ordering-file`, so anything uncertain counts as "no".
fn links_with_rust_lld() -> bool {
    if std::env::var("TARGET").unwrap_or_default() != "x86_64-unknown-linux-gnu" {
        return false;
    }
    // A configured linker (`target.<triple>.linker`) is passed to build scripts as RUSTC_LINKER.
    if std::env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "fuse-ld", "link-self-contained"]
        .iter()
        .any(|f| flags.contains(f))
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90) && version.starts_with("rustc 1.")
}
