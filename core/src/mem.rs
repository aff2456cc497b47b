//! The netmap memory allocator (spec §5): one region made of three pools
//! (netmap_if objects, rings, packet buffers) that userspace maps whole.
//!
//! A [`NetmapMem`] is created with its geometry only ([`NetmapMem::new`]
//! validates the parameters and computes every size and offset, so
//! `nr_memsize` is known at once); [`NetmapMem::finalize`] then charges the
//! region's footprint to the global [`MemBudget`] (refusing it with `ENOMEM`
//! if it does not fit), allocates the clusters from the platform one by one
//! (giving everything back at the first failure) and publishes the lookup
//! tables.
//!
//! Geometry, as in the reference allocator (§5.5, §15.7):
//! * object sizes are rounded up to a multiple of 64 and then checked against
//!   the allowed range;
//! * a *cluster* is the smallest multiple of the object size that is also a
//!   multiple of the page size (at most 4 MiB); as object sizes are multiples
//!   of 64, a cluster always holds a power of two (1..=64) of objects;
//! * object counts are rounded up to whole clusters;
//! * the pools follow each other in the region (if, ring, buf), each a whole
//!   number of clusters, hence of pages.
//!
//! A region can also be built over memory of the application, pinned for
//! the kernel ([`NetmapMem::new_ext`], the EXTMEM option): objects are then
//! laid out consecutively in the user pages, each pool starting on a page,
//! and an object that would straddle pages not contiguous in the kernel's
//! address space is marked invalid (never handed out), as in the reference.
//!
//! Object j of a pool is at `pool offset + j·objsize` in the region; in the
//! kernel the clusters are not contiguous, so a flat table per pool maps an
//! object index to its kernel address. The buffer table is what the data
//! path uses ([`NetmapMem::buf`]): it is published once through
//! [`crate::sync::Once`] and read without locks. Free-object bitmaps and
//! counters are control-path state behind the platform's sleeping mutex.

use crate::error::{Errno, Result};
use crate::platform::{PAGE_SIZE, Platform, RateLimit, UserPages};
use crate::shm::BufRef;
use crate::sync::{Lock, Once};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use netmap_uapi::NmreqPoolsInfo;

/// Objects are aligned (and sized) to this many bytes (`NM_BUF_ALIGN`).
const OBJ_ALIGN: u64 = 64;
/// Largest cluster the reference accepts (`MAX_CLUSTSIZE`).
const MAX_CLUSTER: u64 = 1 << 22;
/// log2 of [`PAGE_SIZE`].
const PAGE_SHIFT: u32 = 12;
const _: () = assert!(PAGE_SIZE == 1 << PAGE_SHIFT);

const IF_POOL: usize = 0;
const RING_POOL: usize = 1;
const BUF_POOL: usize = 2;
const POOL_NAMES: [&str; 3] = ["netmap_if", "netmap_ring", "netmap_buf"];

/// The default memory budget of a machine with `total_ram` bytes of RAM:
/// half of it. What netmap allocates is pinned kernel memory that neither
/// swaps nor shrinks; half leaves the other half to the kernel and every
/// other process however many regions users ask for (the same share as
/// Linux's default `tmpfs` size), and still holds the reference's global
/// region (about 330 MB) on a machine of 1 GiB. A platform that cannot
/// tell its RAM (0) gets no limit.
pub const fn default_budget(total_ram: u64) -> u64 {
    if total_ram == 0 {
        u64::MAX
    } else {
        total_ram / 2
    }
}

/// The one budget of all of netmap's memory (regions with their rings,
/// buffers and extra buffers, and the kernel's lookup tables and free
/// bitmaps of each region). A region charges its whole footprint
/// ([`NetmapMem::footprint`]) *before* anything of it is allocated and
/// gives it back when it is freed; one that does not fit is refused with
/// `ENOMEM` and a rate-limited log line, so no request can make the kernel
/// take more than the budget, whatever the pool parameters.
#[derive(Debug)]
pub struct MemBudget {
    limit: u64,
    used: AtomicU64,
    /// Regions refused because they did not fit.
    refused: AtomicU64,
    /// Region builds that failed in the OS's page allocator.
    alloc_failures: AtomicU64,
    log_limit: RateLimit,
}

impl MemBudget {
    /// A budget of `limit` bytes, none in use.
    pub const fn new(limit: u64) -> Self {
        MemBudget {
            limit,
            used: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            alloc_failures: AtomicU64::new(0),
            log_limit: RateLimit::new(),
        }
    }

    /// Bytes allowed.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes charged by the regions alive (and the global region's share,
    /// reserved when the module loads).
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Regions refused so far because they did not fit.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Region builds that failed so far because the OS had no memory.
    pub fn alloc_failures(&self) -> u64 {
        self.alloc_failures.load(Ordering::Relaxed)
    }

    /// One text line: `budget <limit> used <bytes> refused <n>
    /// alloc_failures <n>`.
    pub fn write_summary(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(
            w,
            "budget {} used {} refused {} alloc_failures {}",
            self.limit(),
            self.used(),
            self.refused(),
            self.alloc_failures()
        )
    }

    /// Take `bytes`; false (and nothing taken) if they do not fit.
    fn try_charge(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .is_ok()
    }

    /// Give back `bytes` taken by [`MemBudget::try_charge`].
    fn release(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(bytes))
            });
    }
}

/// Parameters of one pool (the `*_size` / `*_num` module parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    /// Requested object size in bytes (rounded up to a multiple of 64).
    pub objsize: u32,
    /// Requested number of objects (rounded up to whole clusters).
    pub objtotal: u32,
}

/// Parameters of an allocator: one [`PoolParams`] per pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemParams {
    pub if_pool: PoolParams,
    pub ring_pool: PoolParams,
    pub buf_pool: PoolParams,
}

impl MemParams {
    /// Global allocator defaults (§5.5, §12): if 1024×100, ring 36864×200,
    /// buf 2048×163840.
    pub const fn global_default() -> Self {
        MemParams {
            if_pool: PoolParams {
                objsize: 1024,
                objtotal: 100,
            },
            ring_pool: PoolParams {
                objsize: 9 * PAGE_SIZE as u32,
                objtotal: 200,
            },
            buf_pool: PoolParams {
                objsize: 2048,
                objtotal: 163840,
            },
        }
    }

    /// Private-allocator minimums (§5.5, the `priv_*` module parameters):
    /// if 1024×2, ring 20480×4, buf 2048×4098.
    pub const fn private_default() -> Self {
        MemParams {
            if_pool: PoolParams {
                objsize: 1024,
                objtotal: 2,
            },
            ring_pool: PoolParams {
                objsize: 5 * PAGE_SIZE as u32,
                objtotal: 4,
            },
            buf_pool: PoolParams {
                objsize: 2048,
                objtotal: 4098,
            },
        }
    }

    /// Sizing of a private allocator for a port with `tx_rings` TX rings of
    /// `tx_slots` slots, `rx_rings` RX rings of `rx_slots` slots,
    /// `extra_bufs` extra buffers and `npipes` pipes (§5.5,
    /// `netmap_mem_private_new`). One fake host ring per direction is
    /// accounted for. `min` holds the `priv_*` module parameters; every value
    /// is only ever raised from it. The arithmetic saturates: absurd inputs
    /// give counts that [`NetmapMem::new`] rejects with `EINVAL`.
    pub fn private_for(
        min: &MemParams,
        tx_rings: u32,
        rx_rings: u32,
        tx_slots: u32,
        rx_slots: u32,
        extra_bufs: u32,
        npipes: u32,
    ) -> Self {
        let to_u32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let txr = tx_rings.saturating_add(1);
        let rxr = rx_rings.saturating_add(1);
        let rings = txr.saturating_add(rxr);
        let pipe_rings = npipes.saturating_mul(4);
        let mut p = *min;

        let v = to_u32(crate::shm::nifp_size(rings as usize));
        p.if_pool.objsize = p.if_pool.objsize.max(v);
        p.if_pool.objtotal = p.if_pool.objtotal.max(pipe_rings.saturating_add(2));

        let maxd = tx_slots.max(rx_slots);
        let v = to_u32(crate::shm::ring_size(maxd));
        p.ring_pool.objsize = p.ring_pool.objsize.max(v);
        // Each pipe end has a TX, an RX and two fake host rings.
        let v = rings.saturating_add(npipes.saturating_mul(8));
        p.ring_pool.objtotal = p.ring_pool.objtotal.max(v);

        // Pipe rings may differ in size from the parent's; the reference
        // allocates twice what same-sized pipe rings would need. The +2 is
        // for the reserved buffers 0 and 1.
        let v = pipe_rings
            .saturating_add(rxr)
            .saturating_mul(rx_slots)
            .saturating_add(pipe_rings.saturating_add(txr).saturating_mul(tx_slots))
            .saturating_add(2)
            .saturating_add(extra_bufs);
        p.buf_pool.objtotal = p.buf_pool.objtotal.max(v);
        p
    }

    fn pool(&self, i: usize) -> PoolParams {
        match i {
            IF_POOL => self.if_pool,
            RING_POOL => self.ring_pool,
            _ => self.buf_pool,
        }
    }
}

/// A netmap_if or ring object allocated in a region.
#[derive(Clone, Copy, Debug)]
pub struct MemObj {
    /// Offset of the object from the start of the region.
    pub offset: u64,
    /// Kernel address of the object.
    pub kaddr: NonNull<u8>,
    /// Size of the object (the pool's object size, ≥ the size asked for).
    pub size: usize,
}

// SAFETY: a MemObj is a plain description (offset, address, size); it grants
// no access by itself. Code that dereferences `kaddr` must be `unsafe` and
// justify it (the object stays allocated while the region lives, and shared
// memory is only accessed through `crate::shm`'s volatile/atomic accessors).
unsafe impl Send for MemObj {}
// SAFETY: as above; `&MemObj` only allows copying the fields.
unsafe impl Sync for MemObj {}

/// Usage figures of an allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStats {
    /// netmap_if objects in use.
    pub if_used: u32,
    /// Ring objects in use.
    pub ring_used: u32,
    /// Buffers in use, excluding the reserved buffers 0 and 1.
    pub buf_used: u32,
    /// Clusters allocated from the platform (0 before finalize).
    pub clusters: u32,
}

/// Allowed ranges of one pool's parameters (after rounding the size to 64).
struct PoolLimits {
    min_size: u64,
    max_size: u64,
    min_num: u32,
    max_num: u32,
}

const fn limits(min_size: u64, max_size: u64, min_num: u32, max_num: u32) -> PoolLimits {
    PoolLimits {
        min_size,
        max_size,
        min_num,
        max_num,
    }
}

/// §5.5, global allocator: the netmap_if minimum is `sizeof(struct netmap_if)`.
const GLOBAL_LIMITS: [PoolLimits; 3] = [
    limits(crate::shm::nifp_size(0) as u64, 4096, 10, 10000),
    limits(
        crate::shm::ring_size(0) as u64,
        32 * PAGE_SIZE as u64,
        2,
        1024,
    ),
    limits(64, 65536, 4, 1_000_000),
];

/// §5.5, private allocators: only the netmap_if count range differs.
const PRIVATE_LIMITS: [PoolLimits; 3] = [
    limits(crate::shm::nifp_size(0) as u64, 4096, 1, 100),
    limits(
        crate::shm::ring_size(0) as u64,
        32 * PAGE_SIZE as u64,
        2,
        1024,
    ),
    limits(64, 65536, 4, 1_000_000),
];

/// Geometry of one pool, fixed at creation.
#[derive(Clone, Copy, Debug)]
struct PoolGeom {
    /// Object size, a multiple of 64.
    objsize: u32,
    /// Object count, a whole number of clusters.
    objtotal: u32,
    /// log2 of the objects per cluster (0..=6).
    shift: u32,
    numclusters: u32,
    /// Cluster size in bytes, a multiple of the page size.
    clustsize: usize,
    /// Region offset of the pool.
    offset: u64,
    /// Pool size in bytes.
    memtotal: u64,
}

impl PoolGeom {
    /// `netmap_config_obj_allocator`: validate and round.
    fn new(p: PoolParams, lim: &PoolLimits, offset: u64) -> Result<Self> {
        let objsize = u64::from(p.objsize).div_ceil(OBJ_ALIGN) * OBJ_ALIGN;
        if objsize < lim.min_size || objsize > lim.max_size {
            return Err(Errno::EINVAL);
        }
        if p.objtotal < lim.min_num || p.objtotal > lim.max_num {
            return Err(Errno::EINVAL);
        }
        // objsize ≤ 131072 here, so the conversions are lossless.
        let objsize = objsize as u32;
        // Smallest i with i·objsize a multiple of 2^PAGE_SHIFT: a power of
        // two, because objsize already is a multiple of 64.
        let shift = PAGE_SHIFT.saturating_sub(objsize.trailing_zeros());
        let clustsize = u64::from(objsize) << shift;
        if clustsize > MAX_CLUSTER {
            return Err(Errno::EINVAL);
        }
        let numclusters = p.objtotal.div_ceil(1 << shift);
        Ok(PoolGeom {
            objsize,
            objtotal: numclusters << shift,
            shift,
            numclusters,
            clustsize: clustsize as usize,
            offset,
            memtotal: u64::from(numclusters) * clustsize,
        })
    }

    /// Index of the object at region offset `offset`, if exactly at one.
    fn index_of(&self, offset: u64) -> Option<u32> {
        let rel = offset.checked_sub(self.offset)?;
        let size = u64::from(self.objsize);
        if rel % size != 0 {
            return None;
        }
        let j = rel / size;
        if j < u64::from(self.objtotal) {
            Some(j as u32)
        } else {
            None
        }
    }

    fn obj_offset(&self, j: u32) -> u64 {
        self.offset + u64::from(j) * u64::from(self.objsize)
    }
}

/// Free-object bitmap with a hint: every word below `hint` is full, so the
/// search for the lowest free object starts there.
struct Bitmap {
    /// Bit set = object free. Bits past `total` stay clear.
    words: Vec<u64>,
    total: u32,
    free: u32,
    hint: usize,
}

impl Bitmap {
    /// The bitmap of a pool that is not finalized: no object at all.
    const fn empty() -> Self {
        Bitmap {
            words: Vec::new(),
            total: 0,
            free: 0,
            hint: 0,
        }
    }

    /// All `total` objects free.
    fn try_new(total: u32) -> Result<Self> {
        let n = (total as usize).div_ceil(64);
        let mut words = Vec::new();
        words.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
        words.resize(n, u64::MAX);
        let rem = total % 64;
        if let Some(last) = words.last_mut().filter(|_| rem != 0) {
            *last = (1u64 << rem) - 1;
        }
        Ok(Bitmap {
            words,
            total,
            free: total,
            hint: 0,
        })
    }

    /// Take the lowest free object.
    fn alloc(&mut self) -> Option<u32> {
        while let Some(w) = self.words.get_mut(self.hint) {
            if *w != 0 {
                let b = w.trailing_zeros();
                *w &= !(1u64 << b);
                self.free -= 1;
                return Some(self.hint as u32 * 64 + b);
            }
            self.hint += 1;
        }
        None
    }

    /// Mark object `j` used (the reserved buffers); false if it was not free.
    fn take(&mut self, j: u32) -> bool {
        if !self.is_free(j) {
            return false;
        }
        self.words[j as usize / 64] &= !(1u64 << (j % 64));
        self.free -= 1;
        true
    }

    /// Give object `j` back; false (and no change) if out of range or free.
    fn release(&mut self, j: u32) -> bool {
        if !self.is_used(j) {
            return false;
        }
        let w = j as usize / 64;
        self.words[w] |= 1u64 << (j % 64);
        self.free += 1;
        self.hint = self.hint.min(w);
        true
    }

    /// Every object free again except the first `reserved` ones (the
    /// state right after finalize for the buffer pool).
    fn reset_reserving(&mut self, reserved: u32) {
        let n = self.words.len();
        let rem = self.total % 64;
        for (i, w) in self.words.iter_mut().enumerate() {
            *w = if i + 1 == n && rem != 0 {
                (1u64 << rem) - 1
            } else {
                u64::MAX
            };
        }
        self.free = self.total;
        self.hint = 0;
        for j in 0..reserved {
            self.take(j);
        }
    }

    fn is_free(&self, j: u32) -> bool {
        self.words
            .get(j as usize / 64)
            .is_some_and(|w| w & (1u64 << (j % 64)) != 0)
    }

    fn is_used(&self, j: u32) -> bool {
        j < self.total && !self.is_free(j)
    }

    fn used(&self) -> u32 {
        self.total - self.free
    }
}

/// Kernel address of every object of each pool, published by finalize.
///
/// Entries are pushed a whole cluster at a time, so entry `c << shift` is
/// the base of cluster `c`, and `len >> shift` clusters are owned.
struct Tables {
    lut: [Vec<NonNull<u8>>; 3],
}

// SAFETY: the tables are immutable once published and only hold addresses
// of cluster memory owned by the allocator (freed only by `Drop`, with
// exclusive access). The memory behind them is shared with userspace anyway
// and is accessed through `BufRef` and `crate::shm`, which tolerate
// concurrent access.
unsafe impl Send for Tables {}
// SAFETY: as above.
unsafe impl Sync for Tables {}

/// What a region's memory is.
enum Backing<P: Platform> {
    /// Clusters from the platform, allocated at finalize.
    Clusters,
    /// Pinned pages of an application (EXTMEM), with the objects that
    /// straddle non-contiguous pages, per pool: they stay marked used.
    User {
        pages: P::UserPages,
        invalid: [Vec<u32>; 3],
    },
}

/// The buffers of a region (see [`NetmapMem::bufs`]).
#[derive(Clone, Copy)]
pub struct Bufs<'a> {
    ptrs: &'a [NonNull<u8>],
    size: u32,
}

impl<'a> Bufs<'a> {
    /// Buffer `idx` (`NMB`); any out-of-range index gives buffer 0 (§5.3),
    /// an unfinalized region an empty buffer.
    #[inline]
    pub fn get(&self, idx: u32) -> BufRef<'a> {
        match self.ptrs.get(idx as usize).or(self.ptrs.first()) {
            // SAFETY: as in `NetmapMem::buf`: a buffer object of `size` bytes
            // that lives as long as the region borrowed for 'a.
            Some(&p) => unsafe { BufRef::new(p, self.size) },
            // SAFETY: a zero-sized buffer: no byte is ever accessed.
            None => unsafe { BufRef::new(NonNull::dangling(), 0) },
        }
    }

    pub fn size(&self) -> u32 {
        self.size
    }
}

/// A netmap memory region ("allocator", `struct netmap_mem_d`).
///
/// Shared as `Arc<NetmapMem<P>>`. The `*_alloc`/`*_free` methods take the
/// platform's sleeping mutex: call them from the control path only. [`buf`]
/// (`NMB`/`PNMB`) is lock-free.
///
/// [`buf`]: NetmapMem::buf
pub struct NetmapMem<P: Platform> {
    platform: P,
    id: u16,
    private: bool,
    pools: [PoolGeom; 3],
    memsize: u64,
    /// The budget this region charges, and whether it holds its
    /// [`NetmapMem::footprint`] there now.
    budget: Arc<MemBudget>,
    charged: AtomicBool,
    /// Free bitmaps; empty until finalize.
    state: Lock<P::Mutex, [Bitmap; 3]>,
    tables: Once<Tables>,
    backing: Backing<P>,
}

impl<P: Platform> fmt::Debug for NetmapMem<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetmapMem")
            .field("id", &self.id)
            .field("private", &self.private)
            .field("memsize", &self.memsize)
            .field("pools", &self.pools)
            .field("finalized", &self.is_finalized())
            .finish()
    }
}

impl<P: Platform> NetmapMem<P> {
    /// Validate `params` (§5.5 ranges, private ones if `private`) and compute
    /// the geometry: `EINVAL` if a value is out of range. No memory for the
    /// region is allocated yet (see [`NetmapMem::finalize`]), nothing is
    /// charged to `budget` yet.
    pub fn new(
        platform: P,
        id: u16,
        params: &MemParams,
        private: bool,
        budget: Arc<MemBudget>,
    ) -> Result<Self> {
        let lims = if private {
            &PRIVATE_LIMITS
        } else {
            &GLOBAL_LIMITS
        };
        let ifp = PoolGeom::new(params.pool(IF_POOL), &lims[IF_POOL], 0)?;
        let ringp = PoolGeom::new(params.pool(RING_POOL), &lims[RING_POOL], ifp.memtotal)?;
        let bufp = PoolGeom::new(
            params.pool(BUF_POOL),
            &lims[BUF_POOL],
            ringp.offset + ringp.memtotal,
        )?;
        // Pools are whole clusters, hence whole pages: already page rounded.
        let memsize = bufp.offset + bufp.memtotal;
        let state =
            Lock::new([Bitmap::empty(), Bitmap::empty(), Bitmap::empty()]).ok_or(Errno::ENOMEM)?;
        Ok(NetmapMem {
            platform,
            id,
            private,
            pools: [ifp, ringp, bufp],
            memsize,
            budget,
            charged: AtomicBool::new(false),
            state,
            tables: Once::new(),
            backing: Backing::Clusters,
        })
    }

    /// A private region over `pages`, the pinned `memsize` bytes an
    /// application gave with the EXTMEM option (§5). `params` are its pool
    /// sizes (checked against the private ranges after rounding object
    /// sizes up to 64: `EINVAL`); they must fit in `memsize` (`ENOMEM`), and
    /// memory left over becomes more buffers (up to the buffer pool's
    /// limit). Each pool starts on a page; an object that would straddle
    /// pages not contiguous in the kernel is invalid and never handed out;
    /// a pool ends where the memory does. Buffer 0 must be usable
    /// (`EINVAL`): out-of-range buffer indexes fall back to it. The region
    /// is finalized on return.
    #[inline(never)] // keeps the stack frame of the request dispatch small
    pub fn new_ext(
        platform: P,
        id: u16,
        params: &MemParams,
        memsize: u64,
        pages: P::UserPages,
        budget: Arc<MemBudget>,
    ) -> Result<Self> {
        let lims = &PRIVATE_LIMITS;
        let mut geo = [0; 3].map(|_| PoolParams {
            objsize: 0,
            objtotal: 0,
        });
        let mut left = memsize;
        for (i, g) in geo.iter_mut().enumerate() {
            // Validation only: the cluster geometry does not apply here.
            let pg = PoolGeom::new(params.pool(i), &lims[i], 0)?;
            let need = u64::from(pg.objsize) * u64::from(params.pool(i).objtotal);
            left = left.checked_sub(need).ok_or(Errno::ENOMEM)?;
            *g = PoolParams {
                objsize: pg.objsize,
                objtotal: params.pool(i).objtotal,
            };
        }
        let b = &mut geo[BUF_POOL];
        let more = left.div_ceil(u64::from(b.objsize));
        b.objtotal = (u64::from(b.objtotal) + more).min(u64::from(lims[BUF_POOL].max_num)) as u32;

        // Each pool starts on a page and holds as many objects, laid end to
        // end, as the memory has room for.
        let total = pages.count() as u64 * PAGE_SIZE as u64;
        let mut pools = [PoolGeom {
            objsize: 0,
            objtotal: 0,
            shift: 0,
            numclusters: 0,
            clustsize: 0,
            offset: 0,
            memtotal: 0,
        }; 3];
        let mut off = 0u64;
        for (pool, g) in pools.iter_mut().zip(geo.iter()) {
            let size = u64::from(g.objsize);
            let room = total.saturating_sub(off) / size;
            let placed = u64::from(g.objtotal).min(room);
            let memtotal = (placed * size).div_ceil(PAGE_SIZE as u64) * PAGE_SIZE as u64;
            *pool = PoolGeom {
                objsize: g.objsize,
                objtotal: placed as u32,
                shift: 0,
                numclusters: 0,
                clustsize: 0,
                offset: off,
                memtotal,
            };
            off += memtotal;
        }
        if pools[BUF_POOL].objtotal < 2 {
            return Err(Errno::ENOMEM);
        }
        let state =
            Lock::new([Bitmap::empty(), Bitmap::empty(), Bitmap::empty()]).ok_or(Errno::ENOMEM)?;
        let mut mem = NetmapMem {
            platform,
            id,
            private: true,
            pools,
            memsize: off,
            budget,
            charged: AtomicBool::new(false),
            state,
            tables: Once::new(),
            backing: Backing::User {
                pages,
                invalid: Default::default(),
            },
        };
        // Charged before the tables are built (given back by drop if
        // building them fails).
        mem.reserve()?;
        let Backing::User { pages, invalid } = &mut mem.backing else {
            return Err(Errno::EINVAL); // unreachable: made just above
        };
        let mut lut = [Vec::new(), Vec::new(), Vec::new()];
        Self::place_ext(&mem.pools, pages, &mut lut, invalid)?;
        // Out-of-range indexes map to buffer 0 (§5.3): it must be real, and
        // invalid buffers point to it too.
        let buf0 = match lut[BUF_POOL].first() {
            Some(&b) if invalid[BUF_POOL].first() != Some(&0) => b,
            _ => return Err(Errno::EINVAL),
        };
        for &j in invalid[BUF_POOL].iter() {
            lut[BUF_POOL][j as usize] = buf0;
        }
        let mut bm = [
            Bitmap::try_new(mem.pools[IF_POOL].objtotal)?,
            Bitmap::try_new(mem.pools[RING_POOL].objtotal)?,
            Bitmap::try_new(mem.pools[BUF_POOL].objtotal)?,
        ];
        bm[BUF_POOL].take(0);
        bm[BUF_POOL].take(1);
        for (b, inv) in bm.iter_mut().zip(invalid.iter()) {
            for &j in inv {
                b.take(j);
            }
        }
        *mem.state.lock() = bm;
        // A fresh cell: cannot be set already.
        let _ = mem.tables.set(Tables { lut });
        Ok(mem)
    }

    /// The kernel address of every object of `pools` over the pinned
    /// `pages` (into `lut`), and per pool the objects that straddle pages
    /// not contiguous in the kernel (into `invalid`, with a placeholder in
    /// `lut` that is never used: they stay allocated).
    fn place_ext(
        pools: &[PoolGeom; 3],
        pages: &P::UserPages,
        lut: &mut [Vec<NonNull<u8>>; 3],
        invalid: &mut [Vec<u32>; 3],
    ) -> Result<()> {
        let page = |i: u64| usize::try_from(i).ok().and_then(|i| pages.page(i));
        // Pages [first, last] follow each other in the kernel.
        let contiguous = |first: u64, last: u64| {
            (first..last).all(|p| match (page(p), page(p + 1)) {
                (Some(a), Some(b)) => a.as_ptr().wrapping_add(PAGE_SIZE) == b.as_ptr(),
                _ => false,
            })
        };
        for ((g, lut), invalid) in pools.iter().zip(lut.iter_mut()).zip(invalid.iter_mut()) {
            let size = u64::from(g.objsize);
            lut.try_reserve_exact(g.objtotal as usize)
                .map_err(|_| Errno::ENOMEM)?;
            for j in 0..g.objtotal {
                let o = g.offset + u64::from(j) * size;
                let (first, last) = (o / PAGE_SIZE as u64, (o + size - 1) / PAGE_SIZE as u64);
                let base = page(first).ok_or(Errno::EFAULT)?;
                let kaddr = base.as_ptr().wrapping_add((o % PAGE_SIZE as u64) as usize);
                if contiguous(first, last) {
                    lut.push(NonNull::new(kaddr).ok_or(Errno::EFAULT)?);
                } else {
                    lut.push(NonNull::dangling());
                    invalid.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                    invalid.push(j);
                }
            }
        }
        Ok(())
    }

    /// Whether the region is built over application memory (EXTMEM): it
    /// cannot be mapped through netmap (the application has it already).
    pub fn is_ext(&self) -> bool {
        matches!(self.backing, Backing::User { .. })
    }

    /// Whether the region is built over the same pinned pages as `pages`
    /// (same physical pages, same order): a second EXTMEM request for
    /// memory that already backs a region shares it.
    pub fn same_user_pages(&self, pages: &P::UserPages) -> bool {
        let Backing::User { pages: mine, .. } = &self.backing else {
            return false;
        };
        mine.same_pages(pages)
    }

    /// Bytes the region takes when finalized: its clusters (`memsize`)
    /// plus the kernel's lookup table (one pointer per object) and free
    /// bitmap of each pool. What it charges to the budget. An EXTMEM
    /// region charges its tables only: its memory is the application's.
    pub fn footprint(&self) -> u64 {
        let ptr = core::mem::size_of::<NonNull<u8>>() as u64;
        let own = if self.is_ext() { 0 } else { self.memsize };
        self.pools.iter().fold(own, |acc, g| {
            let n = u64::from(g.objtotal);
            acc + n * ptr + n.div_ceil(64) * 8
        })
    }

    /// One text line: `mem <id> global|private built <0|1> memsize <bytes>
    /// footprint <bytes> if <used>/<total>x<size> ring ... buf ...` (buffers
    /// in use without the reserved 0 and 1).
    pub fn write_summary(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        let st = self.stats();
        let [ifp, ringp, bufp] = self.pool_geometry();
        writeln!(
            w,
            "mem {} {} built {} memsize {} footprint {} if {}/{}x{} ring {}/{}x{} buf {}/{}x{}",
            self.id,
            if self.private { "private" } else { "global" },
            u8::from(self.is_finalized()),
            self.memsize,
            self.footprint(),
            st.if_used,
            ifp.objtotal,
            ifp.objsize,
            st.ring_used,
            ringp.objtotal,
            ringp.objsize,
            st.buf_used,
            bufp.objtotal,
            bufp.objsize
        )
    }

    /// Whether the region's footprint is charged to the budget.
    pub fn is_charged(&self) -> bool {
        self.charged.load(Ordering::Acquire)
    }

    /// Charge the footprint to the budget now, if not yet done (the
    /// global region's share is reserved when the module loads, so that
    /// private regions cannot crowd it out later). `ENOMEM`, with a
    /// rate-limited log line, if it does not fit.
    pub fn reserve(&self) -> Result<()> {
        if self.is_charged() {
            return Ok(());
        }
        let b = &*self.budget;
        let size = self.footprint();
        if b.try_charge(size) {
            if self.charged.swap(true, Ordering::AcqRel) {
                // Unreachable: callers serialize (control mutex, or sole
                // owner), but never charge twice.
                b.release(size);
            }
            return Ok(());
        }
        b.refused.fetch_add(1, Ordering::Relaxed);
        crate::nm_log_ratelimited!(
            self.platform,
            &b.log_limit,
            Warn,
            "mem {}: a region of {} bytes does not fit in netmap's memory budget ({} of {} bytes in use, module parameter max_mem_mb): ENOMEM",
            self.id,
            size,
            b.used(),
            b.limit()
        );
        Err(Errno::ENOMEM)
    }

    /// Give the footprint back to the budget (the region is not, or no
    /// longer, built).
    fn unreserve(&self) {
        if self.charged.swap(false, Ordering::AcqRel) {
            self.budget.release(self.footprint());
        }
    }

    /// The allocator id (`nr_mem_id`).
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Whether this is a private allocator (`NI_PRIV_MEM`).
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Region size (`nr_memsize`), the same before and after finalize.
    pub fn memsize(&self) -> u64 {
        self.memsize
    }

    /// Allocate every cluster of the three pools and build the lookup
    /// tables and free bitmaps (buffers 0 and 1 marked used), after
    /// charging the whole footprint to the budget ([`Self::reserve`]).
    ///
    /// Idempotent, and safe to call concurrently: callers serialize on the
    /// control mutex. On failure (budget exhausted, or the OS out of
    /// memory at any cluster) everything obtained is given back and
    /// `ENOMEM` is returned; a later call starts over.
    pub fn finalize(&self) -> Result<()> {
        if self.is_finalized() {
            return Ok(());
        }
        let mut state = self.state.lock();
        if self.is_finalized() {
            return Ok(());
        }
        // A reservation made here is undone on failure; one made at load
        // (the global region) is kept.
        let reserved_before = self.is_charged();
        self.reserve()?;
        let mut lut = [Vec::new(), Vec::new(), Vec::new()];
        let built = self.alloc_clusters(&mut lut).and_then(|()| {
            let mut bm = [
                Bitmap::try_new(self.pools[IF_POOL].objtotal)?,
                Bitmap::try_new(self.pools[RING_POOL].objtotal)?,
                Bitmap::try_new(self.pools[BUF_POOL].objtotal)?,
            ];
            // Buffers 0 and 1 are reserved (§5.3); objtotal ≥ 4.
            bm[BUF_POOL].take(0);
            bm[BUF_POOL].take(1);
            Ok(bm)
        });
        match built {
            Ok(bm) => {
                *state = bm;
                if let Err(t) = self.tables.set(Tables { lut }) {
                    // Unreachable: the cell is only set under `state`.
                    self.free_clusters(&t.lut);
                }
                Ok(())
            }
            Err(_) => {
                self.free_clusters(&lut);
                if !reserved_before {
                    self.unreserve();
                }
                let b = &*self.budget;
                b.alloc_failures.fetch_add(1, Ordering::Relaxed);
                crate::nm_log_ratelimited!(
                    self.platform,
                    &b.log_limit,
                    Warn,
                    "mem {}: out of memory building a region of {} bytes: ENOMEM",
                    self.id,
                    self.memsize
                );
                Err(Errno::ENOMEM)
            }
        }
    }

    /// Fill `lut` with the clusters of every pool; on error `lut` holds the
    /// clusters obtained so far (whole clusters only).
    fn alloc_clusters(&self, lut: &mut [Vec<NonNull<u8>>; 3]) -> Result<()> {
        for (g, lut) in self.pools.iter().zip(lut.iter_mut()) {
            lut.try_reserve_exact(g.objtotal as usize)
                .map_err(|_| Errno::ENOMEM)?;
            let step = g.objsize as usize;
            for _ in 0..g.numclusters {
                let base = self
                    .platform
                    .alloc_cluster(g.clustsize)
                    .ok_or(Errno::ENOMEM)?;
                for k in 0..1usize << g.shift {
                    // SAFETY: k·objsize < clustsize, so the result stays
                    // inside the cluster just allocated (and is not null).
                    let obj = unsafe { base.add(k * step) };
                    // Within the reserved capacity: never reallocates.
                    lut.push(obj);
                }
            }
        }
        Ok(())
    }

    /// Give back the clusters listed in `lut` (see [`Tables`]).
    fn free_clusters(&self, lut: &[Vec<NonNull<u8>>; 3]) {
        for (g, lut) in self.pools.iter().zip(lut.iter()) {
            for base in lut.iter().step_by(1 << g.shift) {
                // SAFETY: `base` is the start of a cluster obtained from
                // `alloc_cluster(g.clustsize)`; each is freed once, here,
                // when no object of the region can be used any more (failed
                // finalize: tables never published; drop: exclusive access).
                unsafe { self.platform.free_cluster(*base, g.clustsize) };
            }
        }
    }

    /// Whether [`NetmapMem::finalize`] has succeeded.
    pub fn is_finalized(&self) -> bool {
        self.tables.get().is_some()
    }

    /// The `POOLS_INFO_GET` figures (§4.8); finalizes the allocator first.
    /// The pools' actual geometry (after rounding, §5.5), if, ring and
    /// buffer pools: what the `*_curr_size` / `*_curr_num` module
    /// parameters report for the global region.
    pub fn pool_geometry(&self) -> [PoolParams; 3] {
        self.pools.map(|g| PoolParams {
            objsize: g.objsize,
            objtotal: g.objtotal,
        })
    }

    pub fn pools_info(&self) -> Result<NmreqPoolsInfo> {
        self.finalize()?;
        let [ifp, ringp, bufp] = &self.pools;
        Ok(NmreqPoolsInfo {
            nr_memsize: self.memsize,
            nr_mem_id: self.id,
            pad1: [0; 3],
            nr_if_pool_offset: ifp.offset,
            nr_if_pool_objtotal: ifp.objtotal,
            nr_if_pool_objsize: ifp.objsize,
            nr_ring_pool_offset: ringp.offset,
            nr_ring_pool_objtotal: ringp.objtotal,
            nr_ring_pool_objsize: ringp.objsize,
            nr_buf_pool_offset: bufp.offset,
            nr_buf_pool_objtotal: bufp.objtotal,
            nr_buf_pool_objsize: bufp.objsize,
        })
    }

    fn obj_alloc(&self, pool: usize, size: usize) -> Result<MemObj> {
        let g = &self.pools[pool];
        if size > g.objsize as usize {
            crate::nm_log!(
                self.platform,
                Warn,
                "mem {}: {} request size {} too large",
                self.id,
                POOL_NAMES[pool],
                size
            );
            return Err(Errno::ENOMEM);
        }
        let mut state = self.state.lock();
        let Some(j) = state[pool].alloc() else {
            crate::nm_log!(
                self.platform,
                Warn,
                "mem {}: no more {} objects",
                self.id,
                POOL_NAMES[pool]
            );
            return Err(Errno::ENOMEM);
        };
        // A non-empty bitmap implies published tables (both set under lock).
        let Some(&kaddr) = self.tables.get().and_then(|t| t.lut[pool].get(j as usize)) else {
            state[pool].release(j);
            return Err(Errno::ENOMEM);
        };
        Ok(MemObj {
            offset: g.obj_offset(j),
            kaddr,
            size: g.objsize as usize,
        })
    }

    fn obj_free(&self, pool: usize, obj: MemObj) {
        let g = &self.pools[pool];
        let ok = g.index_of(obj.offset).is_some_and(|j| {
            let same = self
                .tables
                .get()
                .and_then(|t| t.lut[pool].get(j as usize))
                .is_some_and(|&k| k == obj.kaddr);
            if !same {
                return false;
            }
            let mut state = self.state.lock();
            let freed = state[pool].release(j);
            // The region fell out of use (no netmap_if, no ring is left):
            // buffers still marked used were leaked by a user (a broken
            // extra-buffer list, swapped slot buffers). Reclaim them, as the
            // reference does when the last user goes (netmap_mem_deref).
            if freed && state[IF_POOL].used() == 0 && state[RING_POOL].used() == 0 {
                state[BUF_POOL].reset_reserving(2);
                if let Backing::User { invalid, .. } = &self.backing {
                    for &j in invalid[BUF_POOL].iter() {
                        state[BUF_POOL].take(j);
                    }
                }
            }
            freed
        });
        if !ok {
            crate::nm_log!(
                self.platform,
                Error,
                "mem {}: freeing invalid or unallocated {} object at offset {}",
                self.id,
                POOL_NAMES[pool],
                obj.offset
            );
        }
    }

    /// Allocate a netmap_if object of at least `size` bytes (the lowest free
    /// one). `ENOMEM` if `size` exceeds the object size, the pool is
    /// exhausted or the allocator is not finalized.
    pub fn if_alloc(&self, size: usize) -> Result<MemObj> {
        self.obj_alloc(IF_POOL, size)
    }

    /// Free a netmap_if object (an invalid or double free is logged and
    /// ignored).
    pub fn if_free(&self, obj: MemObj) {
        self.obj_free(IF_POOL, obj)
    }

    /// Allocate a ring object of at least `size` bytes; see [`Self::if_alloc`].
    pub fn ring_alloc(&self, size: usize) -> Result<MemObj> {
        self.obj_alloc(RING_POOL, size)
    }

    /// Free a ring object; see [`Self::if_free`].
    pub fn ring_free(&self, obj: MemObj) {
        self.obj_free(RING_POOL, obj)
    }

    /// Allocate the lowest free buffer (never 0 or 1); `ENOMEM` when
    /// exhausted or not finalized.
    pub fn buf_alloc(&self) -> Result<u32> {
        self.state.lock()[BUF_POOL].alloc().ok_or(Errno::ENOMEM)
    }

    /// Free buffer `idx`; false (and no change) if `idx` is reserved, out of
    /// range or already free.
    pub fn buf_free(&self, idx: u32) -> bool {
        self.buf_valid(idx) && self.state.lock()[BUF_POOL].release(idx)
    }

    /// Number of buffers of the region, including the reserved 0 and 1.
    pub fn buf_count(&self) -> u32 {
        self.pools[BUF_POOL].objtotal
    }

    /// Buffer size (`nr_buf_size`).
    pub fn buf_size(&self) -> u32 {
        self.pools[BUF_POOL].objsize
    }

    /// Whether `idx` may be handed out / freed: `2 <= idx < buf_count`.
    pub fn buf_valid(&self, idx: u32) -> bool {
        idx >= 2 && idx < self.buf_count()
    }

    /// Buffer `idx` (`NMB`), lock-free. Any out-of-range index gives buffer
    /// 0 (§5.3). Before finalize (no rings exist, so no caller should ask)
    /// the result is an empty buffer: every access is clamped to 0 bytes.
    pub fn buf(&self, idx: u32) -> BufRef<'_> {
        let size = self.pools[BUF_POOL].objsize;
        let ptr = self.tables.get().and_then(|t| {
            let lut = &t.lut[BUF_POOL];
            lut.get(idx as usize).or(lut.first()).copied()
        });
        match ptr {
            // SAFETY: `p` is a buffer object of `size` bytes inside a cluster
            // that stays allocated until `self` is dropped, which cannot
            // happen while the returned borrow of `self` lives.
            Some(p) => unsafe { BufRef::new(p, size) },
            // SAFETY: a zero-sized buffer: no byte is ever accessed.
            None => unsafe { BufRef::new(NonNull::dangling(), 0) },
        }
    }

    /// The buffer table, for a data-path loop that looks up many buffers:
    /// [`Bufs::get`] is [`Self::buf`] without the per-call checks of the
    /// region's state.
    pub fn bufs(&self) -> Bufs<'_> {
        Bufs {
            ptrs: self.tables.get().map_or(&[], |t| &t.lut[BUF_POOL][..]),
            size: self.pools[BUF_POOL].objsize,
        }
    }

    /// Region offset of the buffer pool: buffer k is at
    /// `buf_pool_offset() + k·buf_size()`.
    pub fn buf_pool_offset(&self) -> u64 {
        self.pools[BUF_POOL].offset
    }

    /// Kernel address of the page at region offset `offset` (rounded down
    /// to a page), for the mmap fault handler. `None` beyond `memsize` or
    /// before finalize.
    pub fn page_at(&self, offset: u64) -> Option<NonNull<u8>> {
        if offset >= self.memsize || self.is_ext() {
            return None;
        }
        let t = self.tables.get()?;
        let page = offset & !(PAGE_SIZE as u64 - 1);
        let (g, lut) = self
            .pools
            .iter()
            .zip(t.lut.iter())
            .find(|(g, _)| page < g.offset + g.memtotal)?;
        let rel = page - g.offset;
        let size = u64::from(g.objsize);
        let j = rel / size;
        let base = *lut.get(j as usize)?;
        // Less than an object: the page starts inside object j.
        let delta = (rel - j * size) as usize;
        // SAFETY: object j and the page starting `delta` bytes into it lie in
        // the same cluster (clusters are whole pages and hold consecutive
        // objects), so the result is inside that allocation.
        Some(unsafe { base.add(delta) })
    }

    /// Usage counters.
    pub fn stats(&self) -> MemStats {
        let clusters = if self.is_finalized() {
            self.pools.iter().map(|g| g.numclusters).sum()
        } else {
            0
        };
        let state = self.state.lock();
        MemStats {
            if_used: state[IF_POOL].used(),
            ring_used: state[RING_POOL].used(),
            buf_used: state[BUF_POOL].used().saturating_sub(2),
            clusters,
        }
    }

    /// Allocate up to `n` extra buffers (§5.4) as a list linked through the
    /// first 4 bytes (host endian) of each buffer, 0-terminated; each new
    /// buffer is pushed at the head. Returns `(head, count obtained)`.
    pub fn extra_bufs_alloc(&self, n: u32) -> (u32, u32) {
        let mut state = self.state.lock();
        let mut head = 0;
        let mut got = 0;
        while got < n {
            let Some(idx) = state[BUF_POOL].alloc() else {
                crate::nm_log!(
                    self.platform,
                    Warn,
                    "mem {}: no more buffers after {} of {}",
                    self.id,
                    got,
                    n
                );
                break;
            };
            self.buf(idx).write_u32(head);
            head = idx;
            got += 1;
        }
        (head, got)
    }

    /// Free an extra-buffer list starting at `head` (the current,
    /// user-written `ni_bufs_head`): while the index is valid and allocated,
    /// clear its link word and free it. An invalid index or an already free
    /// buffer stops the walk, so a user-made cycle terminates; returns the
    /// number of buffers freed.
    pub fn extra_bufs_free(&self, head: u32) -> u32 {
        let mut state = self.state.lock();
        let mut idx = head;
        let mut freed = 0;
        // Each step frees a distinct allocated buffer: at most buf_count.
        while self.buf_valid(idx) && state[BUF_POOL].is_used(idx) {
            let b = self.buf(idx);
            let next = b.read_u32();
            b.write_u32(0);
            state[BUF_POOL].release(idx);
            freed += 1;
            idx = next;
        }
        if idx != 0 {
            crate::nm_log!(
                self.platform,
                Warn,
                "mem {}: extra buffer list broken at {} after {} buffers",
                self.id,
                idx,
                freed
            );
        }
        freed
    }
}

impl<P: Platform> Drop for NetmapMem<P> {
    fn drop(&mut self) {
        // User pages are unpinned when `backing` is dropped, after this.
        if let Some(t) = self.tables.take()
            && !self.is_ext()
        {
            self.free_clusters(&t.lut);
        }
        self.unreserve();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_lowest_first_and_tail_bits() {
        let mut b = Bitmap::try_new(130).unwrap();
        assert_eq!(b.words.len(), 3);
        assert_eq!(b.words[2], 0b11);
        for i in 0..130 {
            assert_eq!(b.alloc(), Some(i));
        }
        assert_eq!(b.alloc(), None);
        assert_eq!(b.used(), 130);
        assert!(b.release(70));
        assert!(b.release(3));
        assert!(!b.release(3));
        assert!(!b.release(130));
        assert_eq!(b.alloc(), Some(3));
        assert_eq!(b.alloc(), Some(70));
        assert_eq!(b.alloc(), None);
    }

    #[test]
    fn bitmap_take() {
        let mut b = Bitmap::try_new(4).unwrap();
        assert!(b.take(0));
        assert!(!b.take(0));
        assert!(!b.take(4));
        assert_eq!(b.alloc(), Some(1));
        assert_eq!(b.free, 2);
    }

    #[test]
    fn cluster_geometry() {
        let lim = &GLOBAL_LIMITS[BUF_POOL];
        let g = |objsize, objtotal| PoolGeom::new(PoolParams { objsize, objtotal }, lim, 0);
        let a = g(2048, 5).unwrap();
        assert_eq!(
            (a.objsize, a.shift, a.clustsize, a.objtotal),
            (2048, 1, 4096, 6)
        );
        let a = g(1500, 4).unwrap();
        // 1536 = 3·512: 8 objects make 12288 bytes.
        assert_eq!(
            (a.objsize, a.shift, a.clustsize, a.objtotal),
            (1536, 3, 12288, 8)
        );
        let a = g(65, 4).unwrap();
        assert_eq!(
            (a.objsize, a.shift, a.clustsize, a.objtotal),
            (128, 5, 4096, 32)
        );
        let a = g(65536, 4).unwrap();
        assert_eq!((a.shift, a.clustsize, a.numclusters), (0, 65536, 4));
        // Ring objects above 64 KiB with an odd multiple of 64 would need an
        // 8 MiB cluster: the reference refuses them.
        let r = PoolParams {
            objsize: 65600,
            objtotal: 4,
        };
        assert_eq!(
            PoolGeom::new(r, &GLOBAL_LIMITS[RING_POOL], 0).unwrap_err(),
            Errno::EINVAL
        );
    }
}
