//! NIOCCTRL copy-in and copy-out (§4.1–4.3), with the reference's exact
//! size accounting, so that every malformed request gets the same errno.
//!
//! The header, the body and the option list are copied into kernel memory
//! once; request handlers work on these copies only (userspace can change
//! its own copy meanwhile without effect).

#![deny(unsafe_code)]

use crate::ioctl::IoctlArg;
use crate::platform::Platform;
use crate::{Errno, Result};
use alloc::vec::Vec;
use netmap_uapi::pod::Pod;
use netmap_uapi::{
    NETMAP_MAX_API, NETMAP_MIN_API, NETMAP_REQ_MAXSIZE, NETMAP_REQ_OPT_MAX, NmreqHeader,
    NmreqOption, body_size, option_body_size,
};

/// Size of the reference kernel's scratch buffer: (2 + 6)·8 + 4096 + 6·8.
pub const REQ_BUFSZ: usize =
    (2 + NETMAP_REQ_OPT_MAX as usize) * 8 + NETMAP_REQ_MAXSIZE + NETMAP_REQ_OPT_MAX as usize * 8;
const OPT_HDR: usize = core::mem::size_of::<NmreqOption>();

/// One option of the list, copied in.
#[derive(Clone, Debug)]
pub struct OptEntry {
    /// User address of the option.
    pub uptr: u64,
    pub hdr: NmreqOption,
    /// The option's body (after the 24-byte header), as copied.
    pub body: Vec<u8>,
}

/// A control request in kernel memory.
#[derive(Debug)]
pub struct Request {
    pub hdr: NmreqHeader,
    pub body: Vec<u8>,
    pub opts: Vec<OptEntry>,
    user_body: u64,
    user_opts: u64,
}

impl Request {
    /// A kernel-internal request (legacy ioctls): nothing to copy.
    pub fn internal(hdr: NmreqHeader, body: &[u8]) -> Result<Self> {
        let mut b = Vec::new();
        b.try_reserve_exact(body.len()).map_err(|_| Errno::ENOMEM)?;
        b.extend_from_slice(body);
        Ok(Request {
            hdr,
            body: b,
            opts: Vec::new(),
            user_body: 0,
            user_opts: 0,
        })
    }

    /// Steps 1–6 of §4.1. On error the request is still returned (when
    /// options were read) so that `copy_out` can report option statuses.
    pub fn copy_in<P: Platform>(
        p: &P,
        hdr: NmreqHeader,
    ) -> core::result::Result<Self, (Errno, Option<alloc::boxed::Box<Self>>)> {
        if hdr.nr_version < NETMAP_MIN_API || hdr.nr_version > NETMAP_MAX_API {
            return Err((Errno::EINVAL, None));
        }
        if hdr.nr_reserved != 0 {
            return Err((Errno::EINVAL, None));
        }
        let s = body_size(hdr.nr_reqtype);
        if s > NETMAP_REQ_MAXSIZE {
            return Err((Errno::EMSGSIZE, None));
        }
        if (s > 0 && hdr.nr_body == 0) || (s == 0 && hdr.nr_body != 0) {
            return Err((Errno::EINVAL, None));
        }
        let mut req = Request {
            hdr,
            body: Vec::new(),
            opts: Vec::new(),
            user_body: hdr.nr_body,
            user_opts: hdr.nr_options,
        };
        if req.body.try_reserve_exact(s).is_err() {
            return Err((Errno::ENOMEM, None));
        }
        req.body.resize(s, 0);
        if s > 0 && p.copy_from_user(&mut req.body, hdr.nr_body).is_err() {
            return Err((Errno::EFAULT, None));
        }
        if let Err(e) = req.copy_in_options(p, s) {
            return Err((e, Some(alloc::boxed::Box::new(req))));
        }
        req.hdr.nr_name[63] = 0;
        Ok(req)
    }

    fn copy_in_options<P: Platform>(&mut self, p: &P, s: usize) -> Result<()> {
        let mut used = 16 + s + 48;
        let mut rqsz = s;
        let mut seen: [Option<usize>; NETMAP_REQ_OPT_MAX as usize] =
            [None; NETMAP_REQ_OPT_MAX as usize];
        let mut uptr = self.user_opts;
        while uptr != 0 {
            if used + 8 + OPT_HDR > REQ_BUFSZ {
                return Err(Errno::EMSGSIZE);
            }
            let mut hb = [0u8; OPT_HDR];
            p.copy_from_user(&mut hb, uptr)?;
            let mut oh = NmreqOption::from_bytes(&hb).ok_or(Errno::EFAULT)?;
            rqsz += OPT_HDR;
            used += 8 + OPT_HDR;
            oh.nro_status = 0;
            self.opts.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            let idx = self.opts.len();
            self.opts.push(OptEntry {
                uptr,
                hdr: oh,
                body: Vec::new(),
            });
            if oh.nro_reqtype == 0 {
                self.opts[idx].hdr.nro_status = Errno::EINVAL.0 as u32;
                return Err(Errno::EINVAL);
            }
            let ty = oh.nro_reqtype;
            if ty < NETMAP_REQ_OPT_MAX {
                if let Some(prev) = seen[ty as usize] {
                    self.opts[prev].hdr.nro_status = Errno::EINVAL.0 as u32;
                    self.opts[idx].hdr.nro_status = Errno::EINVAL.0 as u32;
                    return Err(Errno::EINVAL);
                }
                seen[ty as usize] = Some(idx);
                let b = option_body_size(ty, oh.nro_size);
                if b > NETMAP_REQ_MAXSIZE
                    || oh.nro_size > NETMAP_REQ_MAXSIZE as u64
                    || rqsz + b > NETMAP_REQ_MAXSIZE
                    || used + b > REQ_BUFSZ
                {
                    return Err(Errno::EMSGSIZE);
                }
                let mut body = Vec::new();
                body.try_reserve_exact(b).map_err(|_| Errno::ENOMEM)?;
                body.resize(b, 0);
                if b > 0 {
                    p.copy_from_user(&mut body, uptr.wrapping_add(OPT_HDR as u64))?;
                }
                self.opts[idx].body = body;
                rqsz += b;
                used += b;
            }
            uptr = oh.nro_next;
        }
        for o in self.opts.iter_mut() {
            o.hdr.nro_status = Errno::EOPNOTSUPP.0 as u32;
        }
        Ok(())
    }

    /// §4.3: header always; body only on success; each option's header
    /// (with its status) always, its body only on success with status 0.
    /// Returns the final result (EFAULT if a copy-out faulted).
    ///
    /// The header goes to `hdr_dst` (the ioctl's argument, in user memory
    /// or in the OS's kernel copy); bodies and options to user memory.
    /// Option statuses are errnos in the OS's own numbering
    /// ([`Platform::user_errno`]).
    pub fn copy_out<P: Platform>(
        &mut self,
        p: &P,
        hdr_dst: &mut IoctlArg<'_>,
        result: Result<()>,
    ) -> Result<()> {
        self.hdr.nr_body = self.user_body;
        self.hdr.nr_options = self.user_opts;
        self.hdr.nr_reserved = 0;
        let mut fault = hdr_dst.write(p, self.hdr.as_bytes()).is_err();
        if result.is_ok() && !self.body.is_empty() && self.user_body != 0 {
            fault |= p.copy_to_user(self.user_body, &self.body).is_err();
        }
        for o in &self.opts {
            let mut oh = o.hdr;
            if oh.nro_status != 0 {
                oh.nro_status = p.user_errno(Errno(oh.nro_status as i32)) as u32;
            }
            fault |= p.copy_to_user(o.uptr, oh.as_bytes()).is_err();
            if result.is_ok() && o.hdr.nro_status == 0 && !o.body.is_empty() {
                fault |= p
                    .copy_to_user(o.uptr.wrapping_add(OPT_HDR as u64), &o.body)
                    .is_err();
            }
        }
        if fault { Err(Errno::EFAULT) } else { result }
    }

    /// The body as `T` (a copy).
    pub fn body<T: Pod>(&self) -> T {
        T::read_from_prefix(&self.body).unwrap_or_else(T::zeroed)
    }

    /// Replace the body with `v`.
    pub fn set_body<T: Pod>(&mut self, v: &T) {
        let _ = v.write_to_prefix(&mut self.body);
    }

    /// Index of the option of type `ty`, if present.
    pub fn opt(&self, ty: u32) -> Option<usize> {
        self.opts.iter().position(|o| o.hdr.nro_reqtype == ty)
    }

    pub fn set_opt_status(&mut self, i: usize, status: Result<()>) {
        if let Some(o) = self.opts.get_mut(i) {
            o.hdr.nro_status = match status {
                Ok(()) => 0,
                Err(e) => e.0 as u32,
            };
        }
    }

    /// Whether any option is still unconsumed (status EOPNOTSUPP).
    pub fn has_unconsumed_option(&self) -> bool {
        self.opts
            .iter()
            .any(|o| o.hdr.nro_status == Errno::EOPNOTSUPP.0 as u32)
    }
}
