//! Lock wrappers that own their data, built on the platform's raw locks.
//!
//! This is one of the few modules of the core allowed to use `unsafe`: it
//! turns raw OS locks into safe `Lock<R, T>` with RAII guards, provides the
//! kring "busy" try-lock (`nm_kr_tryget` in the reference) and a write-once
//! cell for state published to lock-free readers.

use crate::platform::RawLock;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Data protected by an OS lock.
pub struct Lock<R: RawLock, T> {
    raw: R,
    data: UnsafeCell<T>,
}

// SAFETY: the raw lock serializes every access to `data`, so sharing the
// `Lock` between threads only moves `T` values between threads (needs Send).
unsafe impl<R: RawLock, T: Send> Sync for Lock<R, T> {}
// SAFETY: the lock owns `T`; sending the lock sends `T`.
unsafe impl<R: RawLock, T: Send> Send for Lock<R, T> {}

impl<R: RawLock, T> Lock<R, T> {
    /// Create a lock around `data`; `None` if the OS lock could not be made.
    pub fn new(data: T) -> Option<Self> {
        Some(Self {
            raw: R::new()?,
            data: UnsafeCell::new(data),
        })
    }

    /// Acquire the lock.
    pub fn lock(&self) -> LockGuard<'_, R, T> {
        self.raw.lock();
        LockGuard { lock: self }
    }

    /// Access without locking through exclusive ownership.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// Guard of a [`Lock`]; the lock is released when it is dropped.
pub struct LockGuard<'a, R: RawLock, T> {
    lock: &'a Lock<R, T>,
}

impl<R: RawLock, T> Deref for LockGuard<'_, R, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the raw lock is held.
        unsafe { &*self.lock.data.get() }
    }
}

impl<R: RawLock, T> DerefMut for LockGuard<'_, R, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while the raw lock is held, and the
        // `&mut self` borrow makes this the only reference through it.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<R: RawLock, T> Drop for LockGuard<'_, R, T> {
    fn drop(&mut self) {
        // SAFETY: this guard was created by `Lock::lock`, so we hold it.
        unsafe { self.lock.raw.unlock() }
    }
}

/// A lock that is only ever *tried*: the kring busy flag.
///
/// Taking it never waits, so it cannot deadlock whatever context (process,
/// softirq) contends for it; a sync that finds the ring busy skips it, as the
/// reference does with `nm_kr_tryget`.
pub struct TryLock<T> {
    busy: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: `busy` gives exclusive access to `data` to a single guard at a time.
unsafe impl<T: Send> Sync for TryLock<T> {}
// SAFETY: the lock owns `T`.
unsafe impl<T: Send> Send for TryLock<T> {}

impl<T> TryLock<T> {
    pub const fn new(data: T) -> Self {
        Self {
            busy: AtomicBool::new(false),
            data: UnsafeCell::new(data),
        }
    }

    /// Take the lock if it is free.
    pub fn try_lock(&self) -> Option<TryLockGuard<'_, T>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| TryLockGuard { lock: self })
    }

    /// Take the lock, spinning while a holder finishes (control path only:
    /// holders keep it for one sync at most).
    pub fn lock_spin(&self) -> TryLockGuard<'_, T> {
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            core::hint::spin_loop();
        }
    }

    /// Whether somebody holds the lock right now (racy, for diagnostics).
    pub fn is_locked(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// Guard of a [`TryLock`].
pub struct TryLockGuard<'a, T> {
    lock: &'a TryLock<T>,
}

impl<T> Deref for TryLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `busy` is set by this guard, no other guard exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for TryLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: `busy` is set by this guard, no other guard exists, and
        // `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for TryLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.busy.store(false, Ordering::Release);
    }
}

const ONCE_EMPTY: u8 = 0;
const ONCE_BUSY: u8 = 1;
const ONCE_SET: u8 = 2;

/// A cell written once, then read without locks (e.g. a file's binding,
/// an allocator's lookup tables after finalization).
pub struct Once<T> {
    state: AtomicU8,
    data: UnsafeCell<Option<T>>,
}

// SAFETY: the value is written once before `state` becomes SET (release) and
// only read after observing SET (acquire); afterwards it is shared immutably.
unsafe impl<T: Send + Sync> Sync for Once<T> {}
// SAFETY: the cell owns `T`.
unsafe impl<T: Send> Send for Once<T> {}

impl<T> Default for Once<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Once<T> {
    pub const fn new() -> Self {
        Self {
            state: AtomicU8::new(ONCE_EMPTY),
            data: UnsafeCell::new(None),
        }
    }

    /// The value, if it has been set.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) == ONCE_SET {
            // SAFETY: SET is stored (release) only after the value was
            // written, and the value is never written again.
            unsafe { (*self.data.get()).as_ref() }
        } else {
            None
        }
    }

    /// Set the value; gives it back if the cell was already set (or being
    /// set concurrently).
    pub fn set(&self, v: T) -> Result<(), T> {
        if self
            .state
            .compare_exchange(ONCE_EMPTY, ONCE_BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(v);
        }
        // SAFETY: the EMPTY->BUSY transition succeeded only here, so no other
        // writer exists and readers do not look before SET.
        unsafe { *self.data.get() = Some(v) };
        self.state.store(ONCE_SET, Ordering::Release);
        Ok(())
    }

    /// Take the value out through exclusive ownership.
    pub fn take(&mut self) -> Option<T> {
        *self.state.get_mut() = ONCE_EMPTY;
        self.data.get_mut().take()
    }
}
