//! Generates DPDK bindings against the system DPDK found by pkg-config and
//! compiles C wrappers for DPDK's `static inline` fast-path functions with
//! the same CFLAGS.

use std::env;
use std::path::PathBuf;

const MIN_VERSION: &str = "22.11";
const HOW_TO_INSTALL: &str = "rvs needs DPDK >= 22.11 with its development files (pkg-config \
module `libdpdk`).\n  On Debian 12 / Ubuntu 24.04: `sudo bash scripts/setup.sh` \
(or `sudo apt-get install dpdk dpdk-dev libdpdk-dev clang libclang-dev pkg-config`).\n  \
For a DPDK built from source, set PKG_CONFIG_PATH to the directory holding libdpdk.pc.";

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=rvs_wrappers.h");
    println!("cargo:rerun-if-changed=rvs_wrappers.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = match pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .cargo_metadata(true)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!("error: DPDK not usable: {e}\n{HOW_TO_INSTALL}");
            std::process::exit(1);
        }
    };
    println!("cargo:version={}", dpdk.version);
    // Driver libraries rvs calls directly (vdev creation, net_ring pairs);
    // libdpdk.pc lists only the core libraries. EAL still loads every PMD
    // from its plugin directory at start-up.
    for lib in ["rte_bus_vdev", "rte_net_ring"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }

    // pkg-config's CFLAGS, verbatim, for both cc and bindgen (include paths,
    // `-include rte_config.h`, `-march=...` which selects the inline paths).
    let cflags: Vec<String> = match std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        _ => {
            eprintln!("error: `pkg-config --cflags libdpdk` failed\n{HOW_TO_INSTALL}");
            std::process::exit(1);
        }
    };

    let mut build = cc::Build::new();
    build.file("rvs_wrappers.c").opt_level(3).warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("rvs_wrappers");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_.*")
        .allowlist_function("rte_mempool_.*")
        .allowlist_function("rte_ring_(create|free|lookup)")
        .allowlist_function("rte_eth_from_rings")
        .allowlist_function("rte_vdev_(init|uninit)")
        .allowlist_function("rte_dev_(probe|remove)")
        .allowlist_function("rte_thread_(register|unregister)")
        .allowlist_function("rte_(socket_id|lcore_count|strerror|version|get_main_lcore)")
        .allowlist_function("rte_tel_data_.*")
        .allowlist_function("rte_telemetry_register_cmd")
        .allowlist_function("rte_(malloc_socket|free)")
        .allowlist_function("rvs_.*")
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_eth_(conf|dev_info|stats|xstat|xstat_name|link|rxconf|txconf)")
        .allowlist_var("RTE_.*")
        .allowlist_var("RING_F_.*")
        .allowlist_var("SOCKET_ID_ANY")
        // Packed structs with aligned members do not compile in Rust; nothing
        // on rvs's path reads their fields.
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_ether_addr")
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate();
    let bindings = match bindings {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: bindgen failed on DPDK headers: {e}\n(bindgen needs clang and libclang-dev)\n{HOW_TO_INSTALL}");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    if let Err(e) = bindings.write_to_file(out.join("bindings.rs")) {
        eprintln!("error: writing bindings: {e}");
        std::process::exit(1);
    }
}
