//! Worker threads: pinned to a core and registered with DPDK so that
//! mempool caches and lcore-indexed state work.

use super::{DpdkError, Eal};
use std::cell::Cell;
use std::marker::PhantomData;

/// Registration of the calling thread as a DPDK lcore; unregistered on drop.
/// Not `Send`: it belongs to the thread that registered.
pub struct LcoreRegistration {
    lcore: u32,
    _eal: Eal,
    _not_send: PhantomData<*const Cell<()>>,
}

impl LcoreRegistration {
    /// Registers the calling thread (`rte_thread_register`).
    pub fn register(eal: &Eal) -> Result<Self, DpdkError> {
        // SAFETY: EAL is initialised (we hold an Eal); registering the
        // current thread has no other precondition.
        let rc = unsafe { dpdk_sys::rte_thread_register() };
        if rc != 0 {
            return Err(DpdkError::from_rte_errno("rte_thread_register"));
        }
        Ok(LcoreRegistration {
            lcore: lcore_id(),
            _eal: eal.clone(),
            _not_send: PhantomData,
        })
    }

    /// The lcore id DPDK gave this thread.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }
}

impl Drop for LcoreRegistration {
    fn drop(&mut self) {
        // SAFETY: this thread registered itself and unregisters once.
        unsafe { dpdk_sys::rte_thread_unregister() }
    }
}

/// Sets the calling thread's timer slack (`PR_SET_TIMERSLACK`) to `ns`
/// nanoseconds: how late the kernel may end its sleeps to merge timer
/// wake-ups (50 µs by default, which would turn an adaptive worker's
/// 1 µs back-off sleep into 50). `false` if the kernel refused.
pub fn set_timer_slack_ns(ns: u64) -> bool {
    let ns = libc::c_ulong::try_from(ns.max(1)).unwrap_or(libc::c_ulong::MAX);
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and changes
    // only the calling thread's timer slack; no pointers are passed.
    unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            ns,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        ) == 0
    }
}

/// The calling thread's lcore id (`u32::MAX` for unregistered threads).
pub fn lcore_id() -> u32 {
    // SAFETY: reads a thread-local; no preconditions.
    unsafe { dpdk_sys::rvs_lcore_id() }
}

/// A running worker; join it before dropping ports.
pub struct WorkerHandle<T> {
    handle: std::thread::JoinHandle<Result<T, DpdkError>>,
    core: Option<usize>,
}

impl<T> WorkerHandle<T> {
    /// Waits for the worker; Err(message) if it panicked.
    pub fn join(self) -> Result<Result<T, DpdkError>, String> {
        self.handle.join().map_err(|e| {
            e.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "worker panicked".into())
        })
    }

    /// The core it was pinned to (None if pinning was not possible).
    pub fn core(&self) -> Option<usize> {
        self.core
    }
}

/// The cores the system has online (`/sys/devices/system/cpu/online`,
/// e.g. `0-3,6`), whatever the calling thread's affinity; None if unknown.
fn online_cores() -> Option<Vec<usize>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    let mut v = Vec::new();
    for part in text.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => v.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => v.push(part.parse().ok()?),
        }
    }
    Some(v)
}

/// Spawns a worker thread named `name`, pinned to `core` (when that core
/// exists; otherwise unpinned) and registered with DPDK for its lifetime.
pub fn spawn_worker<F, T>(
    eal: &Eal,
    name: &str,
    core: Option<usize>,
    f: F,
) -> std::io::Result<WorkerHandle<T>>
where
    F: FnOnce(&LcoreRegistration) -> T + Send + 'static,
    T: Send + 'static,
{
    let eal = eal.clone();
    // Pin by setting the affinity outright: filtering by the cores the
    // *calling* thread may use would leave every worker on EAL's main core
    // (EAL pins the thread that initialised it).
    let online = online_cores();
    let core = core.filter(|c| online.as_ref().is_none_or(|o| o.contains(c)));
    let handle = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Some(c) = core {
                core_affinity::set_for_current(core_affinity::CoreId { id: c });
            }
            let reg = LcoreRegistration::register(&eal)?;
            let out = f(&reg);
            drop(reg);
            Ok(out)
        })?;
    Ok(WorkerHandle { handle, core })
}
