//! rvs's own commands on DPDK's telemetry socket
//! (`/var/run/dpdk/<prefix>/dpdk_telemetry.v2`), next to DPDK's
//! `/ethdev/stats` & co., so `dpdk-telemetry.py` shows them.
//!
//! Control publishes a reply per command (and per parameter) with
//! [`publish`]; DPDK's telemetry thread answers a request from the last
//! published reply. The worker path never touches any of this: the only
//! lock is the registry's, taken by control when it publishes and by the
//! telemetry thread just long enough to clone an `Arc`.
//!
//! DPDK limits what a reply can hold (`RTE_TEL_MAX_*`): a top-level dict of
//! at most [`MAX_ENTRIES`] entries whose values are scalars or arrays of
//! scalars (no nested dicts in 22.11); strings are cut to [`MAX_STRING`]
//! bytes. [`Reply`]
//! has exactly that shape, and [`publish`] keeps within the limits.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::{Arc, Mutex, OnceLock};

use dpdk_sys as sys;

use super::error::DpdkError;

/// Most entries in one dict or array of a reply (DPDK's dict limit, 256,
/// less one for [`TRUNCATED`]).
pub const MAX_ENTRIES: usize = 255;
/// Longest string (keys and values), in bytes, DPDK's limit less the NUL.
pub const MAX_STRING: usize = 127;
/// The key added to a dict cut to [`MAX_ENTRIES`]: how many were left out.
pub const TRUNCATED: &str = "truncated";

/// A scalar in a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    /// An unsigned counter or gauge.
    U64(u64),
    /// Text.
    Str(String),
}

impl From<u64> for Scalar {
    fn from(v: u64) -> Scalar {
        Scalar::U64(v)
    }
}

impl From<u32> for Scalar {
    fn from(v: u32) -> Scalar {
        Scalar::U64(v.into())
    }
}

impl From<&str> for Scalar {
    fn from(v: &str) -> Scalar {
        Scalar::Str(v.into())
    }
}

impl From<String> for Scalar {
    fn from(v: String) -> Scalar {
        Scalar::Str(v)
    }
}

/// A value in a top-level dict: a scalar or an array of scalars (DPDK
/// 22.11 nests only arrays, as `/ethdev/stats` does with its per-queue
/// `q_ipackets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A number or string.
    Scalar(Scalar),
    /// An array of scalars (all numbers: a u64 array; else strings).
    Array(Vec<Scalar>),
}

impl<T: Into<Scalar>> From<T> for Value {
    fn from(v: T) -> Value {
        Value::Scalar(v.into())
    }
}

/// The reply to one telemetry command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A JSON object.
    Dict(Vec<(String, Value)>),
    /// A JSON array of scalars (e.g. the parameters a command takes).
    Array(Vec<Scalar>),
}

/// Replies of one command: by parameter (`""` when called without one).
pub type Replies = HashMap<String, Reply>;

#[derive(Default)]
struct Registry {
    registered: BTreeSet<String>,
    replies: HashMap<String, Arc<Replies>>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

fn lock() -> std::sync::MutexGuard<'static, Registry> {
    registry().lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers `cmd` (e.g. `/rvs/services`, at most 56 bytes, `/` and
/// alphanumerics) with `help` for `/help`. Registering a command again is
/// a no-op, so rvsd may do it on every start in one process (tests). Until
/// [`publish`] gives it a reply it answers with an empty dict.
pub fn register(cmd: &str, help: &str) -> Result<(), DpdkError> {
    let mut reg = lock();
    if reg.registered.contains(cmd) {
        return Ok(());
    }
    let ok = cmd.starts_with('/')
        && cmd.len() < 56
        && cmd
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'_');
    let (Ok(c_cmd), Ok(c_help), true) = (CString::new(cmd), CString::new(help), ok) else {
        return Err(DpdkError::InvalidArgument(format!(
            "telemetry command {cmd:?}: want '/' then letters, digits, '_' or '/', under 56 bytes"
        )));
    };
    // SAFETY: both strings are NUL-terminated and live across the call;
    // DPDK copies them into its own table. `callback` has the
    // `telemetry_cb` signature and may run on the telemetry thread at any
    // time, which it is written for (it only reads the registry).
    let rc =
        unsafe { sys::rte_telemetry_register_cmd(c_cmd.as_ptr(), Some(callback), c_help.as_ptr()) };
    if rc != 0 {
        return Err(DpdkError::call("rte_telemetry_register_cmd", rc));
    }
    reg.registered.insert(cmd.to_string());
    Ok(())
}

/// Replaces the replies of `cmd` (keyed by parameter, `""` for none).
pub fn publish(cmd: &str, replies: Replies) {
    lock().replies.insert(cmd.to_string(), Arc::new(replies));
}

/// The reply `cmd` with `param` would give now (what [`callback`] sends).
pub fn current(cmd: &str, param: &str) -> Option<Reply> {
    let r = lock().replies.get(cmd).cloned()?;
    r.get(param).cloned()
}

fn c_string(s: &str) -> CString {
    let mut end = s.len().min(MAX_STRING);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let cut: String = s[..end].chars().filter(|&c| c != '\0').collect();
    CString::new(cut).unwrap_or_default()
}

fn scalar_str(s: &Scalar) -> String {
    match s {
        Scalar::U64(v) => v.to_string(),
        Scalar::Str(s) => s.clone(),
    }
}

/// Fills `d` with `reply`. Returns 0 or a negative errno.
///
/// # Safety
/// `d` must be the valid, exclusively owned `rte_tel_data` DPDK passed to
/// the callback.
unsafe fn fill(d: *mut sys::rte_tel_data, reply: &Reply) -> c_int {
    match reply {
        // SAFETY: `d` is valid per this function's contract.
        Reply::Array(items) => unsafe { fill_array(d, items) },
        Reply::Dict(entries) => {
            // SAFETY: `d` is valid per this function's contract.
            unsafe { sys::rte_tel_data_start_dict(d) };
            let left_out = entries.len().saturating_sub(MAX_ENTRIES);
            for (k, v) in entries.iter().take(MAX_ENTRIES) {
                let key = c_string(k);
                match v {
                    Value::Scalar(s) => {
                        // SAFETY: `d` is a started dict; `key` is NUL-terminated.
                        unsafe { add_dict_scalar(d, &key, s) };
                    }
                    Value::Array(items) => {
                        // SAFETY: allocates a container DPDK frees (keep = 0).
                        let c = unsafe { sys::rte_tel_data_alloc() };
                        if c.is_null() {
                            return -ENOMEM;
                        }
                        // SAFETY: `c` is a fresh container.
                        unsafe { fill_array(c, items) };
                        // SAFETY: `d` is a started dict and takes ownership of `c`
                        // on success; on failure `c` is still ours to free.
                        if unsafe { sys::rte_tel_data_add_dict_container(d, key.as_ptr(), c, 0) }
                            != 0
                        {
                            // SAFETY: not added, so not freed by DPDK.
                            unsafe { sys::rte_tel_data_free(c) };
                        }
                    }
                }
            }
            if left_out > 0 {
                let key = c_string(TRUNCATED);
                // SAFETY: `d` is a started dict with one entry left for this.
                unsafe { sys::rte_tel_data_add_dict_u64(d, key.as_ptr(), left_out as u64) };
            }
            0
        }
    }
}

const ENOMEM: c_int = 12;
const EINVAL: c_int = 22;

/// # Safety
/// `d` is a started dict; `key` lives across the call.
unsafe fn add_dict_scalar(d: *mut sys::rte_tel_data, key: &CStr, v: &Scalar) {
    match v {
        Scalar::U64(n) => {
            // SAFETY: per the function's contract.
            unsafe { sys::rte_tel_data_add_dict_u64(d, key.as_ptr(), *n) };
        }
        Scalar::Str(s) => {
            let s = c_string(s);
            // SAFETY: per the function's contract; DPDK copies the string.
            unsafe { sys::rte_tel_data_add_dict_string(d, key.as_ptr(), s.as_ptr()) };
        }
    }
}

/// An array of u64 when every item is a number, else of strings.
///
/// # Safety
/// `d` is a valid `rte_tel_data` we may overwrite.
unsafe fn fill_array(d: *mut sys::rte_tel_data, items: &[Scalar]) -> c_int {
    let all_u64 = items.iter().all(|s| matches!(s, Scalar::U64(_)));
    let ty = if all_u64 {
        sys::RTE_TEL_U64_VAL
    } else {
        sys::RTE_TEL_STRING_VAL
    };
    // SAFETY: per the function's contract.
    unsafe { sys::rte_tel_data_start_array(d, ty) };
    for s in items.iter().take(MAX_ENTRIES) {
        match s {
            Scalar::U64(n) if all_u64 => {
                // SAFETY: `d` is a started u64 array.
                unsafe { sys::rte_tel_data_add_array_u64(d, *n) };
            }
            other => {
                let c = c_string(&scalar_str(other));
                // SAFETY: `d` is a started string array; DPDK copies the string.
                unsafe { sys::rte_tel_data_add_array_string(d, c.as_ptr()) };
            }
        }
    }
    0
}

/// DPDK's `telemetry_cb`: answers `cmd[,params]` from the registry.
extern "C" fn callback(
    cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    if cmd.is_null() || d.is_null() {
        return -EINVAL;
    }
    // SAFETY: DPDK passes NUL-terminated strings valid for the call.
    let cmd = unsafe { CStr::from_ptr(cmd) }.to_string_lossy();
    let param = if params.is_null() {
        String::new()
    } else {
        // SAFETY: as above.
        unsafe { CStr::from_ptr(params) }
            .to_string_lossy()
            .trim()
            .to_string()
    };
    let replies = lock().replies.get(cmd.as_ref()).cloned();
    let empty = Reply::Dict(Vec::new());
    let reply = match &replies {
        None if param.is_empty() => &empty,
        None => return -EINVAL,
        Some(r) => match r.get(&param) {
            Some(reply) => reply,
            None => return -EINVAL, // DPDK answers {"cmd": null}
        },
    };
    // SAFETY: `d` is the container DPDK handed to this callback.
    unsafe { fill(d, reply) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_cut_at_a_char_boundary_and_lose_nuls() {
        let s = "é".repeat(100); // 200 bytes
        let c = c_string(&s);
        assert!(c.as_bytes().len() <= MAX_STRING);
        assert!(std::str::from_utf8(c.as_bytes()).is_ok());
        assert_eq!(c_string("a\0b").as_bytes(), b"ab");
    }

    #[test]
    fn published_replies_are_current() {
        let mut r = Replies::new();
        r.insert(String::new(), Reply::Array(vec!["x".into()]));
        publish("/rvs/unit_test", r);
        assert_eq!(
            current("/rvs/unit_test", ""),
            Some(Reply::Array(vec![Scalar::Str("x".into())]))
        );
        assert_eq!(current("/rvs/unit_test", "nope"), None);
    }
}
