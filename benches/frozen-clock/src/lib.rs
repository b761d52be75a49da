//! `LD_PRELOAD=libfrozen_clock.so`: the wall clock (`CLOCK_REALTIME`, `gettimeofday`, `time`)
//! always reads 2026-01-01T00:00:00Z; every other clock is the kernel's.
//!
//! Why: hyper stamps every response with a `Date` header it refreshes once per wall-clock
//! second. Each new value enters the HPACK encoder's dynamic table at whichever request
//! happens to cross the second, and from there on the heap is laid out differently, so glibc's
//! malloc does a different amount of consolidation for every later request: callgrind counts
//! for the same 2,500 unary calls then differ by up to 0.5% from run to run. With the wall
//! clock stopped every response is encoded the same way and the counts repeat to about 0.01%.
//! The monotonic clock tokio's timers use keeps running, so timeouts still fire.
//!
//! The functions forward to the system call directly (valgrind gives its guest no vDSO, so
//! glibc makes the same system call), which costs a few instructions per call and no
//! allocation: unlike libfaketime, which adds ~80 instructions to every clock read.
#![allow(unsafe_code)]

use libc::{c_int, clockid_t, time_t, timespec, timeval};

/// 2026-01-01T00:00:00Z.
const FROZEN_SECONDS: time_t = 1_767_225_600;

/// The wall clocks `clock_gettime` can be asked for.
fn is_wall_clock(clock: clockid_t) -> bool {
    matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_TAI
    )
}

/// `clock_gettime(2)` with the wall clocks frozen.
///
/// # Safety
///
/// `ts` must be null or valid for a write of a `timespec`, as for the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_gettime(clock: clockid_t, ts: *mut timespec) -> c_int {
    if is_wall_clock(clock) && !ts.is_null() {
        // SAFETY: non-null, and valid for writes by the caller's contract.
        unsafe {
            ts.write(timespec {
                tv_sec: FROZEN_SECONDS,
                tv_nsec: 0,
            });
        }
        return 0;
    }
    // SAFETY: the kernel validates the arguments (EFAULT, EINVAL) and sets errno through
    // libc's `syscall` wrapper.
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, ts) as c_int }
}

/// `gettimeofday(2)`, frozen; the obsolete time zone argument is ignored, as Linux does.
///
/// # Safety
///
/// `tv` must be null or valid for a write of a `timeval`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gettimeofday(tv: *mut timeval, _tz: *mut libc::c_void) -> c_int {
    if !tv.is_null() {
        // SAFETY: non-null, and valid for writes by the caller's contract.
        unsafe {
            tv.write(timeval {
                tv_sec: FROZEN_SECONDS,
                tv_usec: 0,
            });
        }
    }
    0
}

/// `time(2)`, frozen.
///
/// # Safety
///
/// `out` must be null or valid for a write of a `time_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn time(out: *mut time_t) -> time_t {
    if !out.is_null() {
        // SAFETY: non-null, and valid for writes by the caller's contract.
        unsafe { out.write(FROZEN_SECONDS) };
    }
    FROZEN_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_stands_still_and_the_monotonic_clock_runs() {
        let mut wall = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid, writable timespec.
        assert_eq!(unsafe { clock_gettime(libc::CLOCK_REALTIME, &mut wall) }, 0);
        assert_eq!((wall.tv_sec, wall.tv_nsec), (FROZEN_SECONDS, 0));
        let mut mono = wall;
        // SAFETY: as above.
        assert_eq!(
            unsafe { clock_gettime(libc::CLOCK_MONOTONIC, &mut mono) },
            0
        );
        assert_ne!((mono.tv_sec, mono.tv_nsec), (FROZEN_SECONDS, 0));
        let mut tv = timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: a valid, writable timeval; a null time zone.
        assert_eq!(unsafe { gettimeofday(&mut tv, std::ptr::null_mut()) }, 0);
        assert_eq!(tv.tv_sec, FROZEN_SECONDS);
        // SAFETY: null is allowed.
        assert_eq!(unsafe { time(std::ptr::null_mut()) }, FROZEN_SECONDS);
        // SAFETY: the kernel reports the bad clock id.
        assert_eq!(unsafe { clock_gettime(-1000, &mut mono) }, -1);
    }
}
