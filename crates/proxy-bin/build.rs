//! Link options for the `strait-proxy` binary only.
//!
//! `-z pack-relative-relocs` (RELR) stores the binary's relative relocations as a bitmap instead
//! of one 24-byte `Elf64_Rela` each: `.rela.dyn` shrinks from ~800 KB to a few KB, and the
//! dynamic loader no longer reads all of it into memory at start-up (measured in
//! crates/proxy/benches/NOTES.md, "Memory (RSS)"). The binary stays position-independent, so
//! ASLR is unchanged. It needs binutils >= 2.38 to link and glibc >= 2.36 to run (the linker
//! records a `GLIBC_ABI_DT_RELR` version need, so an older glibc refuses to start it with a clear
//! message instead of misbehaving).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=STRAIT_PROXY_NO_RELR");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // An escape hatch for a toolchain without RELR support (old binutils, other linkers).
    let disabled = std::env::var_os("STRAIT_PROXY_NO_RELR").is_some();
    if os == "linux" && env == "gnu" && !disabled {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
