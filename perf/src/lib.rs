//! rvs-perf: traffic profiles, the benchmark driver, baselines and reports.
#![forbid(unsafe_code)]
