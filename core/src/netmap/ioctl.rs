//! ioctl entry points: NIOCCTRL copy-in/copy-out and the dispatch of
//! requests to their handlers (§4.1), the sync ioctls and the legacy ones.

#![deny(unsafe_code)]

use super::{Netmap, NetmapPriv};
use crate::ioctl::{IoctlArg, IoctlReq};
use crate::kring::Dir;
use crate::platform::Platform;
use crate::request::Request;
use crate::{Errno, Result};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

impl<P: Platform> Netmap<P> {
    /// An ioctl with its Linux number and the user address of its
    /// argument (see [`Netmap::ioctl_req`]); unknown numbers: `EOPNOTSUPP`.
    pub fn ioctl(&self, np: &NetmapPriv<P>, cmd: u32, arg: u64) -> Result<()> {
        let req = IoctlReq::from_linux(cmd).ok_or(Errno::EOPNOTSUPP)?;
        self.ioctl_req(np, req, IoctlArg::User(arg))
    }

    /// A decoded ioctl (the OS edge decodes its own numbering) with its
    /// argument in user memory or already copied in by the OS.
    pub fn ioctl_req(
        &self,
        np: &NetmapPriv<P>,
        req: IoctlReq,
        mut arg: IoctlArg<'_>,
    ) -> Result<()> {
        match req {
            IoctlReq::Ctrl => self.ioctl_ctrl(np, &mut arg),
            IoctlReq::TxSync => self.sync_ioctl(np, Dir::Tx),
            IoctlReq::RxSync => self.sync_ioctl(np, Dir::Rx),
            IoctlReq::RegIf | IoctlReq::GetInfo => self.ioctl_legacy(np, req, &mut arg),
            IoctlReq::Config => {
                if arg.is_null() {
                    return Err(Errno::EINVAL);
                }
                let mut ifr = NmIfreq::zeroed();
                arg.read(&self.platform, ifr.as_bytes_mut())?;
                // Plain VALE switches have no external config hook.
                arg.write(&self.platform, ifr.as_bytes())?;
                Err(Errno::EINVAL)
            }
        }
    }

    fn ioctl_ctrl(&self, np: &NetmapPriv<P>, arg: &mut IoctlArg<'_>) -> Result<()> {
        if arg.is_null() {
            return Err(Errno::EINVAL);
        }
        let mut hdr = NmreqHeader::zeroed();
        arg.read(&self.platform, hdr.as_bytes_mut())?;
        let (mut req, res) = match Request::copy_in(&self.platform, hdr) {
            Ok(mut req) => {
                let r = self.dispatch(np, &mut req);
                (req, r)
            }
            Err((e, Some(req))) => (*req, Err(e)),
            Err((e, None)) => {
                // Nothing but the header was read: give it back unchanged.
                arg.write(&self.platform, hdr.as_bytes())?;
                return Err(e);
            }
        };
        req.copy_out(&self.platform, arg, res)
    }

    /// Execute a copied-in request (§4.1 step 7).
    pub fn dispatch(&self, np: &NetmapPriv<P>, req: &mut Request) -> Result<()> {
        match req.hdr.nr_reqtype {
            NETMAP_REQ_REGISTER => self.req_register(np, req),
            NETMAP_REQ_PORT_INFO_GET => self.req_port_info(req),
            NETMAP_REQ_VALE_ATTACH => self.req_vale_attach(req),
            NETMAP_REQ_VALE_DETACH => self.req_vale_detach(req),
            NETMAP_REQ_VALE_LIST => self.req_vale_list(req),
            NETMAP_REQ_PORT_HDR_SET => self.req_hdr_set(req),
            NETMAP_REQ_PORT_HDR_GET => self.req_hdr_get(req),
            NETMAP_REQ_VALE_NEWIF => self.req_vale_newif(req),
            NETMAP_REQ_VALE_DELIF => self.req_vale_delif(req),
            NETMAP_REQ_VALE_POLLING_ENABLE | NETMAP_REQ_VALE_POLLING_DISABLE => {
                self.req_polling(req)
            }
            NETMAP_REQ_POOLS_INFO_GET => self.req_pools_info(req),
            NETMAP_REQ_SYNC_KLOOP_START => self.kloop_start(np, req),
            NETMAP_REQ_SYNC_KLOOP_STOP => self.kloop_stop(np),
            NETMAP_REQ_CSB_ENABLE => {
                let i = req.opt(NETMAP_REQ_OPT_CSB).ok_or(Errno::EINVAL)?;
                let r = self.csb_enable(np, &req.opts[i].body);
                req.set_opt_status(i, r);
                r
            }
            _ => Err(Errno::EINVAL),
        }
    }
}
