//! EAL start-up and clean-up, once per process.

use super::DpdkError;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

static INITIALISED: AtomicBool = AtomicBool::new(false);
static TEST_PREFIX_SEQ: AtomicU64 = AtomicU64::new(0);

/// An EAL argument list (argv[0] included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalArgs {
    /// The arguments, program name first.
    pub args: Vec<String>,
    /// Remove the runtime directory (`/var/run/dpdk/<prefix>`) right after
    /// start-up; only sound with `--no-shconf` (nothing is kept there).
    pub remove_runtime_dir: bool,
}

impl EalArgs {
    /// Arguments as given, e.g. from rvsd's config.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EalArgs {
            args: args.into_iter().map(Into::into).collect(),
            remove_runtime_dir: false,
        }
    }

    /// Test mode: no hugepages, no PCI, `mem_mb` of ordinary memory, a file
    /// prefix unique to this process and `tag`, no shared config files, and
    /// the runtime directory removed after start-up. Main lcore 0; worker
    /// threads register themselves and get lcore ids above it.
    pub fn test(tag: &str, mem_mb: u32) -> Self {
        let seq = TEST_PREFIX_SEQ.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("rvs-{tag}-{}-{seq}", std::process::id());
        EalArgs {
            args: vec![
                "rvs".into(),
                "-l".into(),
                "0".into(),
                "--no-huge".into(),
                "-m".into(),
                mem_mb.to_string(),
                "--no-pci".into(),
                "--no-shconf".into(),
                "--file-prefix".into(),
                prefix,
                "--log-level".into(),
                "lib.eal:warning".into(),
            ],
            remove_runtime_dir: true,
        }
    }

    /// Appends `--vdev <devargs>`.
    pub fn vdev(mut self, devargs: &str) -> Self {
        self.args.push("--vdev".into());
        self.args.push(devargs.into());
        self
    }
}

struct EalGuard;

impl Drop for EalGuard {
    fn drop(&mut self) {
        // SAFETY: the last Eal handle is going away: every port, mempool,
        // ring and worker holds a handle, so none of them is left.
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }
}

/// A handle on the initialised EAL. Cheap to clone; the EAL is cleaned up
/// when the last handle (including those held by ports, pools and workers)
/// is dropped.
#[derive(Clone)]
pub struct Eal {
    _guard: Arc<EalGuard>,
}

impl std::fmt::Debug for Eal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Eal")
    }
}

impl Eal {
    /// Initialises EAL. A second call in the same process is refused with
    /// [`DpdkError::AlreadyInitialised`] (DPDK cannot be re-initialised, even
    /// after clean-up).
    pub fn init(args: &EalArgs) -> Result<Eal, DpdkError> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialised);
        }
        let mut c_args = Vec::with_capacity(args.args.len());
        for a in &args.args {
            match CString::new(a.as_str()) {
                Ok(c) => c_args.push(c),
                Err(_) => {
                    return Err(DpdkError::InvalidArgument(format!(
                        "EAL argument {a:?} contains NUL"
                    )))
                }
            }
        }
        // EAL keeps pointers into argv (it permutes it, and keeps the program name);
        // the strings live for the rest of the process, once per process.
        let mut argv: Vec<*mut c_char> = c_args.into_iter().map(CString::into_raw).collect();
        let argc = argv.len() as i32;
        argv.push(std::ptr::null_mut());
        let argv = argv.leak();
        // SAFETY: argv holds argc valid NUL-terminated strings followed by a
        // NULL, all leaked so they outlive EAL; init runs once per process
        // (guarded by INITIALISED).
        let rc = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_rte_errno("rte_eal_init"));
        }
        if args.remove_runtime_dir {
            // SAFETY: EAL is initialised; the returned string is static.
            let dir = unsafe {
                let p = dpdk_sys::rte_eal_get_runtime_dir();
                if p.is_null() {
                    None
                } else {
                    Some(CStr::from_ptr(p).to_string_lossy().into_owned())
                }
            };
            if let Some(dir) = dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        Ok(Eal {
            _guard: Arc::new(EalGuard),
        })
    }

    /// The DPDK version string, e.g. `DPDK 22.11.11`.
    pub fn version(&self) -> String {
        // SAFETY: rte_version returns a static NUL-terminated string.
        unsafe {
            CStr::from_ptr(dpdk_sys::rte_version())
                .to_string_lossy()
                .into_owned()
        }
    }

    /// Leaks one handle so that EAL is never cleaned up (used when memory
    /// EAL owns may still be referenced, e.g. mbufs of a leaked pool).
    pub(crate) fn pin_forever(&self) {
        std::mem::forget(self.clone());
    }
}

/// Reads the time-stamp counter.
#[inline(always)]
pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions.
    unsafe { dpdk_sys::rvs_rdtsc() }
}

/// TSC ticks per second as EAL measured them (0 before EAL is initialised).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at start-up; no preconditions.
    unsafe { dpdk_sys::rvs_get_tsc_hz() }
}
