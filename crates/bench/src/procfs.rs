//! CPU time and memory of processes from `/proc`, the way the issue asks for them: CPU-seconds
//! are `utime + stime` from `/proc/<pid>/stat`, memory is `VmRSS` / `VmHWM` from
//! `/proc/<pid>/status`, summed over a process and its descendants (nginx's master and worker).

use std::path::Path;

/// Why a `/proc` file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (the process has probably exited).
    #[error("cannot read {path}: {source}; has the process exited?")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not have the expected layout.
    #[error("unexpected format of {what}: {detail}")]
    Format {
        /// Which file.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// The fields of `/proc/<pid>/stat` the harness needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Parent process id (field 4).
    pub ppid: u32,
    /// User-mode CPU time in clock ticks (field 14).
    pub utime: u64,
    /// Kernel-mode CPU time in clock ticks (field 15).
    pub stime: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may
/// itself contain spaces and parentheses, so fields are counted from the *last* `)`.
pub fn parse_stat(text: &str) -> Result<ProcStat, ProcError> {
    let bad = |detail: &str| ProcError::Format {
        what: "/proc/<pid>/stat",
        detail: detail.to_string(),
    };
    let close = text
        .rfind(')')
        .ok_or_else(|| bad("no ')' after the command name"))?;
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state), so field N is rest[N - 3].
    let field = |n: usize| -> Result<u64, ProcError> {
        rest.get(n - 3)
            .ok_or_else(|| bad(&format!("field {n} missing")))?
            .parse::<u64>()
            .map_err(|e| bad(&format!("field {n}: {e}")))
    };
    Ok(ProcStat {
        ppid: u32::try_from(field(4)?).map_err(|e| bad(&format!("ppid: {e}")))?,
        utime: field(14)?,
        stime: field(15)?,
    })
}

/// Memory figures from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcMemory {
    /// Resident set size now.
    pub rss_kb: u64,
    /// Peak resident set size ("high water mark").
    pub hwm_kb: u64,
}

/// Parses `VmRSS` and `VmHWM` from the text of `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Result<ProcMemory, ProcError> {
    let mut mem = ProcMemory::default();
    let mut found = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "VmRSS" => &mut mem.rss_kb,
            "VmHWM" => &mut mem.hwm_kb,
            _ => continue,
        };
        let number = value.trim().trim_end_matches("kB").trim();
        *slot = number.parse().map_err(|e| ProcError::Format {
            what: "/proc/<pid>/status",
            detail: format!("{key}: {e}"),
        })?;
        found += 1;
    }
    if found < 2 {
        return Err(ProcError::Format {
            what: "/proc/<pid>/status",
            detail: "VmRSS or VmHWM missing (kernel thread or zombie?)".into(),
        });
    }
    Ok(mem)
}

fn read(path: &str) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|source| ProcError::Read {
        path: path.to_string(),
        source,
    })
}

/// `pid` and every live descendant of it.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return all;
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, parse_stat(&read(&format!("/proc/{p}/stat")).ok()?).ok()?.ppid)))
        .collect();
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        all.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    all
}

/// Clock ticks per second (`getconf CLK_TCK`); 100 on every Linux we know of.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// CPU-seconds (user + system) used so far by `pids`.
pub fn cpu_seconds(pids: &[u32], ticks_per_s: f64) -> Result<f64, ProcError> {
    let mut ticks = 0u64;
    for pid in pids {
        let stat = parse_stat(&read(&format!("/proc/{pid}/stat"))?)?;
        ticks += stat.utime + stat.stime;
    }
    Ok(ticks as f64 / ticks_per_s)
}

/// Summed memory of `pids`.
pub fn memory(pids: &[u32]) -> Result<ProcMemory, ProcError> {
    let mut total = ProcMemory::default();
    for pid in pids {
        let m = parse_status(&read(&format!("/proc/{pid}/status"))?)?;
        total.rss_kb += m.rss_kb;
        total.hwm_kb += m.hwm_kb;
    }
    Ok(total)
}

/// True when `/proc/<pid>` exists (the process, or its zombie, is still there).
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STAT: &str = "4242 (nginx: worker) S 4241 4241 4241 0 -1 4194624 1266 0 0 0 731 262 0 0 20 0 1 0 \
                        123456 12345678 3000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            ProcStat {
                ppid: 4241,
                utime: 731,
                stime: 262
            }
        );
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces_is_skipped() {
        let text = STAT.replace("(nginx: worker)", "(a) b (c))");
        assert_eq!(parse_stat(&text).unwrap().utime, 731);
    }

    #[test]
    fn truncated_stat_is_an_error() {
        assert!(parse_stat("1 (x) S 0 1 2").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn status_memory_lines() {
        let text =
            "Name:\tstrait\nVmPeak:\t  20000 kB\nVmHWM:\t    9120 kB\nVmRSS:\t    8004 kB\nThreads:\t2\n";
        assert_eq!(
            parse_status(text).unwrap(),
            ProcMemory {
                rss_kb: 8004,
                hwm_kb: 9120
            }
        );
        assert!(parse_status("Name:\tkthreadd\n").is_err());
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(cpu_seconds(&[me], clock_ticks()).is_ok());
        assert!(memory(&[me]).unwrap().rss_kb > 0);
        assert!(process_tree(me).contains(&me));
    }

    proptest! {
        #[test]
        fn any_command_name_parses(name in "[ -~]{0,30}", utime in 0u64..1u64<<40, stime in 0u64..1u64<<40) {
            let text = format!("7 ({name}) R 1 7 7 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 1 0 5 6 7");
            let s = parse_stat(&text).unwrap();
            prop_assert_eq!((s.ppid, s.utime, s.stime), (1, utime, stime));
        }
    }
}
