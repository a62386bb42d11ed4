//! Keeping the kernel's DAMON sampler off the core under test for the length of a run.
//!
//! Why: the VMs this harness runs on run `kdamond`, the kernel's Data Access MONitor, over all
//! physical memory with a `pageout` scheme (memory reclaim). It wakes every ~510 ms and then runs 2–5 ms in the kernel without yielding
//! (the kernel is built `PREEMPT_NONE`). `perf sched timehist` showed it landing on the proxy's
//! core in 29 of 41 wake-ups during one 14 s run, holding a woken proxy off its core for up to
//! 4.1 ms each time. At 1,000 rps that delays the 3–5 requests in flight or arriving meanwhile,
//! every half second: 0.6–1% of the requests, which is exactly where the p99 sits, so a cell's
//! p99 depended on how many of these wake-ups happened to land on its core. The proxies under
//! test are not at fault and all of them suffer it alike. With `--move-kdamond` the harness
//! moves the sampler to CPU 0, with the load generator and the backend, and puts it back
//! afterwards. There it stalls the client side instead, where a stalled send is measured from
//! when it was actually sent (see [`crate::loadgen`]), so at most the one request in flight is
//! affected.
//!
//! It is not the default: two back-to-back five-round runs of the one-hop cells, one with and
//! one without, did not differ by more than the machine's other noise (docs/benchmarks.md, round
//! 10), and a benchmark should not change the machine's settings without a measured reason.
//!
//! Nothing is turned off: the sampler keeps its intervals and its scheme; only where it may run
//! changes, for the run. If the harness is killed before it restores the mask, the thread simply
//! stays on CPU 0.

use std::path::Path;
use std::process::Command;

/// Threads moved for the run, restored when dropped.
#[derive(Debug, Default)]
pub struct Moved {
    /// (pid, name, CPU list before).
    threads: Vec<(u32, String, String)>,
    /// One line per thread for the report's machine description.
    pub notes: Vec<String>,
}

/// A `kdamond` kernel thread as found.
#[derive(Debug, PartialEq)]
struct Kdamond {
    pid: u32,
    name: String,
    /// Where it may run (`Cpus_allowed_list`, e.g. `0-1`).
    cpus: String,
}

/// Kernel threads (children of `kthreadd`, pid 2) whose name starts with `kdamond`.
fn kdamonds(proc_root: &Path) -> Vec<Kdamond> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut found: Vec<Kdamond> = entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let name = status_field(&status, "Name")?;
            let kernel = status_field(&status, "PPid")? == "2";
            (name.starts_with("kdamond") && kernel).then(|| Kdamond {
                pid,
                name: name.to_string(),
                cpus: status_field(&status, "Cpus_allowed_list")
                    .unwrap_or("?")
                    .to_string(),
            })
        })
        .collect();
    found.sort_by_key(|k| k.pid);
    found
}

/// The value of `key:` in a `/proc/PID/status` text.
fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// Moves every `kdamond` thread to `cpu` (what the harness's load side uses). A thread that
/// cannot be moved (not root, no `taskset`) is left where it is and noted.
pub fn move_kdamond(cpu: usize) -> Moved {
    let mut moved = Moved::default();
    for Kdamond {
        pid,
        name,
        cpus: before,
    } in kdamonds(Path::new("/proc"))
    {
        if taskset(pid, &cpu.to_string()) {
            moved.notes.push(format!(
                "{name} (the kernel's DAMON sampler, pid {pid}): kept on CPU {cpu} for the run (was {before}), see crates/bench/src/kthreads.rs"
            ));
            moved.threads.push((pid, name, before));
        } else {
            moved.notes.push(format!(
                "{name} (the kernel's DAMON sampler, pid {pid}): could not be moved off the proxies' core (runs on {before}); expect noisier p99s"
            ));
        }
    }
    moved
}

/// One line per `kdamond` thread left where it is, for the machine description: a reader of a
/// noisy p99 should know the sampler was there.
pub fn describe_kdamond() -> Vec<String> {
    kdamonds(Path::new("/proc"))
        .into_iter()
        .map(|Kdamond { pid, name, cpus }| {
            format!(
                "{name} (the kernel's DAMON sampler, pid {pid}): left on CPUs {cpus}, the proxies' core included (--move-kdamond keeps it off)"
            )
        })
        .collect()
}

fn taskset(pid: u32, cpus: &str) -> bool {
    Command::new("taskset")
        .args(["-pc", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for Moved {
    fn drop(&mut self) {
        for (pid, name, before) in &self.threads {
            if !taskset(*pid, before) {
                eprintln!("[bench] could not give {name} (pid {pid}) its CPUs {before} back");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_of_a_status_file() {
        let status = "Name:\tkdamond.0\nUmask:\t0000\nPPid:\t2\nCpus_allowed_list:\t0-1\n";
        assert_eq!(status_field(status, "Name"), Some("kdamond.0"));
        assert_eq!(status_field(status, "PPid"), Some("2"));
        assert_eq!(status_field(status, "Cpus_allowed_list"), Some("0-1"));
        assert_eq!(status_field(status, "Pid"), None);
    }

    #[test]
    fn finds_kernel_threads_named_kdamond_only() {
        let root = std::env::temp_dir().join(format!("strait-kthreads-{}", std::process::id()));
        let write = |pid: &str, name: &str, ppid: &str| {
            let dir = root.join(pid);
            std::fs::create_dir_all(&dir).unwrap();
            let status = format!("Name:\t{name}\nPPid:\t{ppid}\nCpus_allowed_list:\t0-1\n");
            std::fs::write(dir.join("status"), status).unwrap();
        };
        write("77", "kdamond.0", "2");
        write("78", "kdamond.1", "2");
        // A user process that calls itself kdamond is not the kernel's.
        write("900", "kdamond", "1");
        write("15", "rcu_preempt", "2");
        std::fs::create_dir_all(root.join("self")).unwrap();
        let found = kdamonds(&root);
        std::fs::remove_dir_all(&root).unwrap();
        let kd = |pid, name: &str| Kdamond {
            pid,
            name: name.to_string(),
            cpus: "0-1".to_string(),
        };
        assert_eq!(found, vec![kd(77, "kdamond.0"), kd(78, "kdamond.1")]);
    }
}
