//! The generator's own CPU time, to tell what a request costs the load generator (and
//! whether it, rather than the server, was the bottleneck).

use std::ops::Sub;

/// CPU time of this process, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTime {
    pub user_s: f64,
    pub sys_s: f64,
}

impl CpuTime {
    pub fn total_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

impl Sub for CpuTime {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self {
            user_s: (self.user_s - rhs.user_s).max(0.0),
            sys_s: (self.sys_s - rhs.sys_s).max(0.0),
        }
    }
}

impl std::ops::AddAssign for CpuTime {
    fn add_assign(&mut self, rhs: Self) {
        self.user_s += rhs.user_s;
        self.sys_s += rhs.sys_s;
    }
}

/// User and system CPU time used by all threads of this process so far.
#[expect(unsafe_code, reason = "getrusage fills a plain struct")]
pub fn process_cpu() -> CpuTime {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    // SAFETY: rusage is plain data; getrusage writes all of it or fails (and then it stays
    // zeroed).
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) != 0 {
            return CpuTime::default();
        }
        usage
    };
    CpuTime {
        user_s: tv(usage.ru_utime),
        sys_s: tv(usage.ru_stime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_moves_forward() {
        let a = process_cpu();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = process_cpu();
        assert!((b - a).total_s() > 0.0);
    }
}
