//! Small statistics helpers for repeated measurements.

/// Median of the samples (mean of the middle two for an even count); 0 for
/// none.
pub fn median(samples: &[f64]) -> f64 {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Formats packets per second as `12.34 Mpps`.
pub fn mpps(pps: f64) -> String {
    format!("{:.2} Mpps", pps / 1e6)
}

/// On-CPU time in nanoseconds (the first field of
/// `/proc/<pid>/task/<tid>/schedstat`) summed over the threads of process
/// `pid` (None: this process) whose name contains `name`. None when no
/// such thread exists. On a shared machine this is what a polling thread
/// really got, so rates are reported per on-CPU second too.
pub fn thread_cpu_ns(pid: Option<u32>, name: &str) -> Option<u64> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}/task"),
        None => "/proc/self/task".to_string(),
    };
    let mut total = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let path = e.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.trim().contains(name) {
            continue;
        }
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(ns) = ns {
            total = Some(total.unwrap_or(0) + ns);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn this_thread_has_cpu_time() {
        let me = std::thread::current().name().map(|n| n.to_string());
        // The test harness names test threads after the test; comm holds
        // at most 15 bytes of it.
        if let Some(n) = me {
            let short: String = n.chars().take(15).collect();
            let _ = thread_cpu_ns(None, &short);
        }
        assert!(thread_cpu_ns(None, "no-such-thread-name").is_none());
    }

    #[test]
    fn mpps_format() {
        assert_eq!(mpps(23_914_621.0), "23.91 Mpps");
    }
}
