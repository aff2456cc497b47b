//! The OFFSETS option of REGISTER (§4.11): the data of a slot starts
//! `ptr & offset_mask` bytes into its buffer (at most the declared maximum),
//! so that applications can keep headroom in front of their frames or use
//! parts of one buffer. The data paths read the setting once per sync or
//! batch (`Kring::offsets`); rings without it pay nothing per slot.

#![deny(unsafe_code)]

use super::Netmap;
use crate::adapter::{Adapter, Kind, RingRange};
use crate::kring::Dir;
use crate::platform::Platform;
use crate::{Errno, Result};
use core::mem::size_of;
use core::sync::atomic::Ordering;
use netmap_uapi::pod::Pod;
use netmap_uapi::{NmreqOptOffsets, NmreqOption};

impl<P: Platform> Netmap<P> {
    /// Apply the OFFSETS option (`body`: what follows the option header)
    /// to the rings `ranges` of `na` a file has just bound (they exist).
    /// On success the effective maximum is written back into `body`.
    /// Errors: `EOPNOTSUPP` (zero-copy monitors), `EINVAL` (more than 64
    /// bits, maximum beyond the buffer or the mask, initial offset beyond
    /// the maximum), `EBUSY` (a ring in use with a narrower setting).
    pub(super) fn offsets_option(
        &self,
        na: &Adapter<P>,
        ranges: &[RingRange; 2],
        body: &mut [u8],
    ) -> Result<()> {
        let hdr = size_of::<NmreqOption>();
        let mut raw = [0u8; size_of::<NmreqOptOffsets>()];
        let n = body.len().min(raw.len() - hdr);
        raw[hdr..hdr + n].copy_from_slice(&body[..n]);
        let mut opt =
            NmreqOptOffsets::read_from_prefix(&raw).unwrap_or_else(NmreqOptOffsets::zeroed);
        // Zero-copy monitors hand the parent's buffers around as they are.
        if matches!(&na.kind, Kind::Monitor(m) if m.zcopy) {
            return Err(Errno::EOPNOTSUPP);
        }
        let bits = opt.nro_offset_bits;
        if bits > 64 {
            return Err(Errno::EINVAL);
        }
        let mut mask = if bits == 0 || bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let mut max = opt.nro_max_offset;
        let initial = opt.nro_initial_offset;
        if max > u64::from(na.mem.buf_size()) || max & mask != max || initial > max {
            return Err(Errno::EINVAL);
        }
        // Rings already set up by another file keep their setting, which
        // must cover the request.
        for d in Dir::BOTH {
            for i in ranges[d.idx()].iter() {
                let Some(k) = na.kring(d, i) else { continue };
                if let Some(o) = k.offsets()
                    && (o.mask & mask != mask || o.max < max)
                {
                    return Err(Errno::EBUSY);
                }
            }
        }
        for d in Dir::BOTH {
            for i in ranges[d.idx()].iter() {
                let Some(k) = na.kring(d, i) else { continue };
                let Some(ring) = k.ring() else { continue };
                if let Some(o) = k.offsets() {
                    (mask, max) = (o.mask, o.max);
                } else {
                    k.offset_max.store(max, Ordering::Release);
                    k.offset_gap.store(opt.nro_min_gap, Ordering::Release);
                    k.offset_mask.store(mask, Ordering::Release);
                    ring.set_offset_mask(mask);
                }
                // The initial offset goes into every slot of a ring nobody
                // else uses (the others' slots are theirs).
                if initial == 0 || k.users() > 1 {
                    continue;
                }
                for j in 0..ring.num_slots() {
                    let p = ring.slot_user_ptr(j);
                    ring.set_slot_user_ptr(j, (p & !mask) | (initial & mask));
                }
            }
        }
        opt.nro_max_offset = max;
        let out = opt.as_bytes();
        body[..n].copy_from_slice(&out[hdr..hdr + n]);
        Ok(())
    }
}
