//! Ring index arithmetic used by userspace (the inline helpers of the reference
//! headers), as pure functions on numbers read once from a ring (spec §6.3).
//!
//! All functions are total: out-of-range indexes or `num_slots == 0` give some value
//! but never panic or overflow.

use crate::abi::NetmapRing;

/// `nm_ring_next`: the slot after `i` in a ring of `num_slots` slots.
pub const fn nm_ring_next(num_slots: u32, i: u32) -> u32 {
    let n = i.wrapping_add(1);
    if n == num_slots { 0 } else { n }
}

/// `nm_ring_space`: `(tail - head) mod num_slots`, the slots available to the user
/// (free TX slots, or received RX packets).
pub const fn nm_ring_space(num_slots: u32, head: u32, tail: u32) -> u32 {
    let ret = tail as i64 - head as i64;
    let ret = if ret < 0 { ret + num_slots as i64 } else { ret };
    ret as u32
}

/// `nm_ring_empty`: no slot available to the user (`head == tail`).
pub const fn nm_ring_empty(head: u32, tail: u32) -> bool {
    head == tail
}

/// `nm_tx_pending`: a TX ring still has slots being transmitted
/// (`next(tail) != head`).
pub const fn nm_tx_pending(num_slots: u32, head: u32, tail: u32) -> bool {
    nm_ring_next(num_slots, tail) != head
}

impl NetmapRing {
    /// [`nm_ring_next`] on this ring's `num_slots`.
    pub const fn next(&self, i: u32) -> u32 {
        nm_ring_next(self.num_slots, i)
    }

    /// [`nm_ring_space`] on this ring's `num_slots`, `head`, `tail`.
    pub const fn space(&self) -> u32 {
        nm_ring_space(self.num_slots, self.head, self.tail)
    }

    /// [`nm_ring_empty`] on this ring's `head`, `tail`.
    pub const fn is_empty(&self) -> bool {
        nm_ring_empty(self.head, self.tail)
    }

    /// [`nm_tx_pending`] on this ring's `num_slots`, `head`, `tail`.
    pub const fn tx_pending(&self) -> bool {
        nm_tx_pending(self.num_slots, self.head, self.tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_wraps() {
        assert_eq!(nm_ring_next(8, 0), 1);
        assert_eq!(nm_ring_next(8, 7), 0);
        assert_eq!(nm_ring_next(0, u32::MAX), 0);
        assert_eq!(nm_ring_next(1, 0), 0);
    }

    #[test]
    fn space_and_pending() {
        // New TX ring: head = cur = 0, tail = n - 1: n - 1 free slots, nothing pending.
        assert_eq!(nm_ring_space(8, 0, 7), 7);
        assert!(!nm_tx_pending(8, 0, 7));
        // After sending 3: head = 3, tail = 7 → 4 free, 3 pending.
        assert_eq!(nm_ring_space(8, 3, 7), 4);
        assert!(nm_tx_pending(8, 3, 7));
        // Wrap-around.
        assert_eq!(nm_ring_space(8, 6, 2), 4);
        assert!(nm_ring_empty(5, 5));
        assert_eq!(nm_ring_space(8, 5, 5), 0);
        // Garbage never panics.
        let _ = nm_ring_space(0, u32::MAX, 0);
        let _ = nm_ring_space(u32::MAX, u32::MAX, 0);
        let r = NetmapRing {
            num_slots: 8,
            head: 3,
            cur: 3,
            tail: 7,
            ..NetmapRing::default()
        };
        assert_eq!(r.space(), 4);
        assert!(r.tx_pending());
        assert!(!r.is_empty());
        assert_eq!(r.next(7), 0);
    }
}
